package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
	"github.com/dexbridge/dexbridge/services/poller"
)

// env is nxsim with a discovered cache, NATS with the EXECUTIONS stream, and a way to
// trigger executions the way the remote action manager records them.
type env struct {
	sim      *nxsim.Instance
	pool     *pgxpool.Pool
	db       *store.DB
	cfg      config.Config
	set      *instances.Set
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects events.Subjects
}

func newEnv(t *testing.T, size int, settings nxsim.ExecutionSettings) *env {
	t.Helper()
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.FleetSize = size
		c.Executions = nxsim.ExecutionTiming{Tick: 10 * time.Millisecond}
	})
	discoverytest.Control(t, sim, "eu", http.MethodPut, "/_nxsim/executions/settings", settings, nil)
	pool := testenv.Postgres(t)
	db := store.New(pool)
	cfg := discoverytest.Config(sim, "eu")
	cfg.Limits.PortalRequestsPerSecond, cfg.Limits.EngineRequestsPerSecond = 1000, 1000
	set := discoverytest.Instances(t, cfg, db, nil)
	discoverytest.Discover(t, discoverytest.Discoverer(t, cfg, db, set, nil), "eu")
	nc := testenv.NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, pool: pool, db: db, cfg: cfg, set: set, nc: nc, js: js, subjects: events.NewSubjects(testenv.Prefix(t))}
}

// windowsDevices returns n Windows devices of the cache that nxsim has online (seen
// in the last hour).
func (e *env) windowsDevices(t *testing.T, n int) []store.CachedDevice {
	t.Helper()
	rows, _ := e.pool.Query(context.Background(), `SELECT name, collector_uid FROM devices
		WHERE instance = 'eu' AND platform = 'Windows' AND name LIKE 'EU-%' AND last_seen > now() - interval '50 minutes'
		ORDER BY name LIMIT $1`, n)
	devs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.CachedDevice, error) {
		var d store.CachedDevice
		return d, r.Scan(&d.Name, &d.CollectorUID)
	})
	if err != nil || len(devs) != n {
		t.Fatalf("windows devices: got %d, want %d (%v)", len(devs), n, err)
	}
	return devs
}

// trigger runs a remote action on each device through the Remote Actions API and
// records the executions as the remote action manager does.
func (e *env) trigger(t *testing.T, action string, devs []store.CachedDevice) []string {
	t.Helper()
	ctx := context.Background()
	in, _ := e.set.Get("eu")
	ids := make([]string, len(devs))
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, d := range devs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := in.Client.Trigger(ctx, nexthink.TriggerRequest{RemoteActionID: action, Devices: []string{d.CollectorUID}})
			if err != nil {
				errs[i] = err
				return
			}
			now := time.Now()
			x := store.Execution{ID: fmt.Sprintf("ex_%032x", i+1), RemoteAction: action, Instance: "eu", CollectorUID: d.CollectorUID,
				DeviceName: d.Name, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			res, err := e.db.ReserveExecution(ctx, x, store.AuditRecord{RemoteAction: action, Device: d.Name}, nil, false)
			if err == nil {
				_, err = e.db.MarkTriggered(ctx, x.ID, resp.RequestID, x.ExpiresAt, res.AuditID)
			}
			errs[i], ids[i] = err, x.ID
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// ticks collects the ticks of pollers, by name.
type ticks struct {
	mu  sync.Mutex
	all []namedTick
}

type namedTick struct {
	poller string
	poller.Tick
	at time.Time
}

func (k *ticks) observe(name string) func(poller.Tick) {
	return func(tk poller.Tick) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.all = append(k.all, namedTick{name, tk, time.Now()})
	}
}

func (k *ticks) of(name string, since time.Time) []namedTick {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []namedTick
	for _, tk := range k.all {
		if (name == "" || tk.poller == name) && !tk.at.Before(since) {
			out = append(out, tk)
		}
	}
	return out
}

// tuning is the tests' poller configuration: a tick every 100 ms, changed by mod.
func tuning(mod func(*poller.Config)) poller.Config {
	c := poller.DefaultConfig()
	c.Interval = 100 * time.Millisecond
	if mod != nil {
		mod(&c)
	}
	return c
}

func (e *env) poller(o poller.Options) *poller.Service {
	o.DB, o.Instances, o.JS, o.Subjects, o.Log = e.db, e.set, e.js, e.subjects, logging.Discard()
	if o.Config == (poller.Config{}) {
		o.Config = tuning(nil)
	}
	return poller.New(o)
}

// start runs s until stop or the end of t.
func start(t *testing.T, s *poller.Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("poller: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestOneQueryPerInstancePerTick: with 200 pending executions on 200 devices of one
// instance, one poll tick sends one NQL request to that instance, not 200.
func TestOneQueryPerInstancePerTick(t *testing.T) {
	e := newEnv(t, 600, nxsim.ExecutionSettings{PendingMS: int(time.Hour / time.Millisecond)})
	e.trigger(t, "#repair_onedrive", e.windowsDevices(t, 200))
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	var k ticks
	stop := start(t, e.poller(poller.Options{Config: tuning(func(c *poller.Config) { c.Interval = time.Hour }), Observe: k.observe("p")}))
	testenv.Eventually(t, "a tick", func() bool { return len(k.of("p", time.Time{})) == 1 })
	stop()
	tk := k.of("p", time.Time{})[0]
	if tk.Open != 200 || tk.Queries != 1 || tk.Failed != 0 {
		t.Errorf("tick: got %d open, %d queries (%d failed), want 200 open in 1 query", tk.Open, tk.Queries, tk.Failed)
	}
	c := discoverytest.Counters(t, e.sim, "eu")
	if got := c.Endpoints["POST /api/v2/nql/execute"]; got != 1 {
		t.Errorf("NQL execute calls to the instance: got %d, want 1", got)
	}
	if got := c.Queries[poller.QueryID]; got != 1 {
		t.Errorf("%s: got %d, want 1", poller.QueryID, got)
	}
}

// TestStatesEventsAndMetrics: the poller records every state up to success and
// publishes one event per change, which any subscriber receives; the pending gauge
// follows.
func TestStatesEventsAndMetrics(t *testing.T) {
	e := newEnv(t, 200, nxsim.ExecutionSettings{PendingMS: 50, RunningMS: 100})
	received := map[string][]string{}
	seen := map[string]bool{} // Nats-Msg-Id: a publish retried reaches core subscribers twice
	var mu sync.Mutex
	sub, err := e.nc.Subscribe(e.subjects.Of(events.ActionsUpdated, "*"), func(m *nats.Msg) {
		var ev events.ExecutionUpdatedEvent
		if json.Unmarshal(m.Data, &ev) != nil || m.Subject != e.subjects.Of(events.ActionsUpdated, ev.Execution.ID) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
			if seen[id] {
				return
			}
			seen[id] = true
		}
		received[ev.Execution.ID] = append(received[ev.Execution.ID], ev.Execution.Status)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := metrics.New()
	start(t, e.poller(poller.Options{Metrics: m}))
	ids := e.trigger(t, "#repair_onedrive", e.windowsDevices(t, 20))
	testenv.Eventually(t, "every execution to succeed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			s := received[id]
			if len(s) == 0 || s[len(s)-1] != events.StatusSuccess {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		x, err := e.db.Execution(context.Background(), id)
		if err != nil || x.Status != events.StatusSuccess {
			t.Errorf("%s: got %s %v, want success", id, x.Status, err)
		}
		states, err := e.db.ExecutionStates(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := received[id]
		mu.Unlock()
		// One event per recorded change (the trigger's own state is the manager's to publish).
		if len(states) != len(got)+1 {
			t.Errorf("%s: %d states recorded, %d events received (%v)", id, len(states), len(got), got)
		}
	}
	// The stream keeps them, deduplicated by execution and version: one message per
	// event received (the stream stores a message in its own time, after the core
	// subscribers may have had it).
	info, err := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamExecutions))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := uint64(len(seen))
	mu.Unlock()
	var stored uint64
	testenv.Eventually(t, "the stream to hold every event", func() bool {
		si, err := info.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		stored = si.State.Msgs
		return stored >= want
	})
	if stored != want {
		t.Errorf("stream: %d messages, want %d, one per event", stored, want)
	}
	testenv.Eventually(t, "the pending gauge to reach 0", func() bool {
		g, err := m.PendingExecutions.GetMetricWithLabelValues("eu")
		var v dto.Metric
		return err == nil && g.Write(&v) == nil && v.GetGauge().GetValue() == 0
	})
}

// TestExpiry: an execution still open past its expiry is expired by dexbridge,
// recorded as such and announced.
func TestExpiry(t *testing.T) {
	e := newEnv(t, 200, nxsim.ExecutionSettings{PendingMS: 50, RunningMS: 100})
	devs := e.windowsDevices(t, 1)
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/devices/online", map[string]any{"devices": []string{devs[0].Name}, "online": false}, nil)
	ids := e.trigger(t, "#repair_onedrive", devs)
	stop := start(t, e.poller(poller.Options{}))
	testenv.Eventually(t, "waiting_for_device", func() bool {
		x, _ := e.db.Execution(context.Background(), ids[0])
		return x.Status == events.StatusWaitingForDevice
	})
	stop()
	sub, err := e.nc.SubscribeSync(e.subjects.Of(events.ActionsUpdated, ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	// Two hours later, as the next poller's clock sees it.
	start(t, e.poller(poller.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}))
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal("no expiry event:", err)
	}
	var ev events.ExecutionUpdatedEvent
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.Execution.Status != events.StatusExpired {
		t.Errorf("event: got %+v %v, want expired", ev.Execution, err)
	}
	states, err := e.db.ExecutionStates(context.Background(), ids[0])
	if err != nil || states[len(states)-1].Status != events.StatusExpired || states[len(states)-1].Source != store.SourceExpiry {
		t.Errorf("states: got %+v %v, want expired by expiry last", states, err)
	}
}

// TestFailover: one poller polls an instance while another waits; when the first
// stops, the other takes over; when the polling one loses its database session (the
// test ends the session PostgreSQL reports holding the lease), polling resumes on a
// new lease.
func TestFailover(t *testing.T) {
	e := newEnv(t, 200, nxsim.ExecutionSettings{PendingMS: int(time.Hour / time.Millisecond)})
	e.trigger(t, "#repair_onedrive", e.windowsDevices(t, 3))
	var k ticks
	const retry = 100 * time.Millisecond
	stopA := start(t, e.poller(poller.Options{Config: tuning(func(c *poller.Config) { c.LeaseRetry = retry }), Observe: k.observe("a")}))
	testenv.Eventually(t, "a to poll", func() bool { return len(k.of("a", time.Time{})) >= 2 })
	start(t, e.poller(poller.Options{Config: tuning(func(c *poller.Config) { c.LeaseRetry = retry }), Observe: k.observe("b")}))
	since := time.Now()
	testenv.Eventually(t, "five more ticks of a", func() bool { return len(k.of("a", since)) >= 5 })
	if n := len(k.of("b", time.Time{})); n != 0 {
		t.Fatalf("b polled %d times while a held the lease", n)
	}

	stopA()
	stopped := time.Now()
	testenv.Eventually(t, "b to take over", func() bool { return len(k.of("b", stopped)) >= 1 })

	pid := testenv.LeaseHolder(t, e.pool, "poller", "eu")
	if pid == 0 {
		t.Fatal("PostgreSQL reports no holder of the lease b polls on")
	}
	if _, err := e.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "a new session holding the lease", func() bool {
		holder := testenv.LeaseHolder(t, e.pool, "poller", "eu")
		return holder != 0 && holder != pid
	})
	retaken := time.Now()
	testenv.Eventually(t, "polling on the new lease", func() bool { return len(k.of("", retaken)) > 0 })
}

// TestNoPendingNoQuery: an instance without open executions is not asked anything.
func TestNoPendingNoQuery(t *testing.T) {
	e := newEnv(t, 200, nxsim.ExecutionSettings{})
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	var k ticks
	start(t, e.poller(poller.Options{Observe: k.observe("p")}))
	testenv.Eventually(t, "three ticks", func() bool { return len(k.of("p", time.Time{})) >= 3 })
	if n := discoverytest.Counters(t, e.sim, "eu").Endpoints["POST /api/v2/nql/execute"]; n != 0 {
		t.Errorf("NQL calls without open executions: got %d, want 0", n)
	}
}
