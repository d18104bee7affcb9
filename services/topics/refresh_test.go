package topics

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// fakeActions plays the remoteactions service: each triggered execution moves to its
// final status after a delay, announced by an update on NATS (unless quiet) and
// visible to Get.
type fakeActions struct {
	mu       sync.Mutex
	nc       *nats.Conn
	subjects events.Subjects
	execs    map[string]events.Execution
	final    string        // the final status
	after    time.Duration // how long an execution runs; negative: never finishes
	quiet    bool          // no update events: only Get shows the change
	refuse   error         // Trigger fails with it
	gets     int
	trigger  []events.ActionsTriggerRequest
}

func newFakeActions(t *testing.T, final string, after time.Duration) *fakeActions {
	return &fakeActions{nc: testenv.NATS(t), subjects: events.NewSubjects(testenv.Prefix(t)), execs: map[string]events.Execution{},
		final: final, after: after}
}

func (f *fakeActions) refresher(bound, poll time.Duration) *refresher {
	return &refresher{actions: f, updates: f.nc, subjects: f.subjects, bound: bound, poll: poll}
}

func (f *fakeActions) Trigger(_ context.Context, req events.ActionsTriggerRequest) (events.Execution, error) {
	if f.refuse != nil {
		return events.Execution{}, f.refuse
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trigger = append(f.trigger, req)
	id := fmt.Sprintf("ex_%d", len(f.trigger))
	ex := events.Execution{ID: id, RemoteAction: req.RemoteAction, Status: events.StatusPending, UpdatedAt: time.Now()}
	f.execs[id] = ex
	if f.after >= 0 {
		time.AfterFunc(f.after, func() {
			f.mu.Lock()
			ex := f.execs[id]
			ex.Status, ex.UpdatedAt = f.final, time.Now()
			f.execs[id] = ex
			f.mu.Unlock()
			if !f.quiet {
				b, _ := json.Marshal(events.ExecutionUpdatedEvent{Header: events.NewHeader(events.TypeExecutionUpdatedEvent), Execution: ex})
				_ = f.nc.Publish(f.subjects.Of(events.ActionsUpdated, id), b)
			}
		})
	}
	return ex, nil
}

func (f *fakeActions) Get(_ context.Context, id string) (events.Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	ex, ok := f.execs[id]
	if !ok {
		return ex, problem.New(problem.NotFound, "no execution %s", id)
	}
	return ex, nil
}

// quietActions are fakeActions that publish no updates.
func quietActions(t *testing.T, final string, after time.Duration) *fakeActions {
	a := newFakeActions(t, final, after)
	a.quiet = true
	return a
}

func slowPC(t *testing.T) *topic.Program {
	t.Helper()
	set, err := topic.FilesIn(testenv.RepoRoot(t)).Load()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Topic("slow_pc")
	return p
}

// TestRefreshWaitsForTheDataCollection: a refresh triggers each data-collection action
// of the topic on the device and returns once each is final, woken by updates or,
// without them, by polling; at the bound it returns what it has; a refused trigger is
// the answer.
func TestRefreshWaitsForTheDataCollection(t *testing.T) {
	p := slowPC(t)
	dev := wrapper.Device{Name: "PC-GPO", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Instance: "eu"}
	tests := []struct {
		name    string
		actions *fakeActions
		bound   time.Duration
		status  string        // of every execution returned
		within  time.Duration // the refresh's duration, at most
		atLeast time.Duration // and at least
	}{
		{name: "updates", actions: newFakeActions(t, events.StatusSuccess, 100*time.Millisecond), bound: 10 * time.Second,
			status: events.StatusSuccess, atLeast: 100 * time.Millisecond, within: 2 * time.Second},
		{name: "failure is final too", actions: newFakeActions(t, events.StatusFailure, 50*time.Millisecond), bound: 10 * time.Second,
			status: events.StatusFailure, within: 2 * time.Second},
		{name: "no updates: polling", actions: quietActions(t, events.StatusSuccess, 100*time.Millisecond), bound: 10 * time.Second, status: events.StatusSuccess, atLeast: 100 * time.Millisecond, within: 2 * time.Second},
		{name: "bound reached", actions: newFakeActions(t, events.StatusSuccess, -1), bound: 300 * time.Millisecond,
			status: events.StatusPending, atLeast: 300 * time.Millisecond, within: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.actions.refresher(tt.bound, 50*time.Millisecond)
			start := time.Now()
			execs, err := r.collect(context.Background(), p, dev, "dg_1", events.PresenceOnline)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if took < tt.atLeast || took > tt.within {
				t.Errorf("took %s, want between %s and %s", took, tt.atLeast, tt.within)
			}
			if len(execs) != 2 {
				t.Fatalf("got %d executions, want 2 (the topic's data collection)", len(execs))
			}
			for k, ex := range execs {
				if ex.Status != tt.status || ex.RemoteAction != p.DataCollection()[k] {
					t.Errorf("execution %d: got %s %s, want %s %s", k, ex.RemoteAction, ex.Status, p.DataCollection()[k], tt.status)
				}
			}
			for _, req := range tt.actions.trigger {
				if req.Device != dev.CollectorUID || req.Topic != "slow_pc" || req.IdempotencyKey != "dg_1:"+req.RemoteAction {
					t.Errorf("trigger: got %+v, want the device's collector UID, the topic and a key per diagnosis and action", req)
				}
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		a := newFakeActions(t, events.StatusSuccess, 0)
		a.refuse = problem.New(problem.RateLimited, "instance eu is busy").Retry(time.Second)
		_, err := a.refresher(time.Second, time.Second).collect(context.Background(), p, dev, "dg_2", events.PresenceOnline)
		if got := problem.CodeOf(err); got != problem.RateLimited {
			t.Errorf("got %v, want the trigger's rate_limited", err)
		}
	})
}

// TestRefreshDoesNotWaitForAnAbsentDevice: the refresh's wait ends as soon as each
// execution waits for the device (whatever the bound), or at once when the device is
// known offline and the execution pending.
func TestRefreshDoesNotWaitForAnAbsentDevice(t *testing.T) {
	p := slowPC(t)
	seen := time.Now().Add(-3 * 24 * time.Hour)
	dev := wrapper.Device{Name: "PC-OFFLINE", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Instance: "eu", LastSeen: &seen}
	tests := []struct {
		name     string
		actions  *fakeActions
		presence string
		status   string
	}{
		{"the tenant says it waits for the device", newFakeActions(t, events.StatusWaitingForDevice, 50*time.Millisecond), events.PresenceOnline, events.StatusWaitingForDevice},
		{"pending on a device known offline", newFakeActions(t, events.StatusSuccess, -1), events.PresenceOffline, events.StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bound is far beyond the test's own deadline: only the early end returns.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			execs, err := tt.actions.refresher(time.Hour, 50*time.Millisecond).collect(ctx, p, dev, "dg_3", tt.presence)
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatal("the refresh waited until the test's deadline")
			}
			for _, ex := range execs {
				if ex.Status != tt.status || ex.Device.Presence != tt.presence || ex.Device.LastSeen == nil || !ex.Device.LastSeen.Equal(seen) {
					t.Errorf("got %s on a device %q last seen %v, want %s with the device's presence and last_seen", ex.Status, ex.Device.Presence, ex.Device.LastSeen, tt.status)
				}
			}
		})
	}
}

func TestSource(t *testing.T) {
	for _, tt := range []struct {
		sources []string
		want    string
	}{
		{[]string{"cache"}, "cache"},
		{[]string{"live", "live"}, "live"},
		{[]string{"cache", "live"}, "mixed"},
	} {
		var answers []wrapper.Answer
		for _, s := range tt.sources {
			answers = append(answers, wrapper.Answer{Source: s})
		}
		if got := source(answers); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.sources, got, tt.want)
		}
	}
}
