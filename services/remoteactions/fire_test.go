package remoteactions

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/store"
)

// releasingStore answers the first reservation with an active execution of the same
// fix that is being triggered, which then goes (Nexthink refused it), and records the
// second reservation.
type releasingStore struct {
	Store        // the methods fire does not call
	reservations int
	reads        int
	audits       []string
}

func (s *releasingStore) ReserveExecution(_ context.Context, e store.Execution, _ store.AuditRecord, _ *store.IdempotencyKey, dedupe bool) (store.Reservation, error) {
	s.reservations++
	if s.reservations == 1 && dedupe {
		other := e
		other.ID, other.Status = "ex_00000000000000000000000000000001", store.ExecTriggering
		return store.Reservation{Active: &other}, nil
	}
	return store.Reservation{Reserved: true, AuditID: 7}, nil
}

func (s *releasingStore) Execution(_ context.Context, id string) (store.Execution, error) {
	s.reads++
	if s.reads == 1 {
		return store.Execution{ID: id, Status: store.ExecTriggering}, nil
	}
	return store.Execution{}, store.ErrNotFound
}

func (s *releasingStore) MarkTriggered(_ context.Context, id, requestID string, expiresAt time.Time, _ int64) (store.Execution, error) {
	return store.Execution{ID: id, RequestID: requestID, Status: store.ExecPending, ExpiresAt: expiresAt}, nil
}

func (s *releasingStore) RecordAudit(_ context.Context, a store.AuditRecord) (int64, error) {
	s.audits = append(s.audits, a.Outcome)
	return 1, nil
}

type acceptingUpstream struct{ triggers int }

func (u *acceptingUpstream) Trigger(context.Context, nexthink.TriggerRequest) (*nexthink.TriggerResponse, error) {
	u.triggers++
	return &nexthink.TriggerResponse{RequestID: "req-1", ExpiresInMinutes: 60}, nil
}

func (u *acceptingUpstream) RemoteAction(context.Context, string) (*nexthink.RemoteAction, error) {
	return nil, nil
}

// TestTriggerRunsWhenTheActiveOneIsRefused: a trigger that found the same fix being
// triggered waits for it; when Nexthink refuses that one (its reservation goes), the
// trigger reserves again and runs, rather than answer with an execution that never ran.
func TestTriggerRunsWhenTheActiveOneIsRefused(t *testing.T) {
	s := &releasingStore{}
	up := &acceptingUpstream{}
	m := &manager{store: s, log: slog.New(slog.DiscardHandler), now: time.Now, expiresIn: time.Hour,
		triggerTimeout: time.Second, replayWait: 5 * time.Second}
	j := &job{action: &allowlist.RemoteAction{ID: "#repair_onedrive"}, device: device{name: "PC-1", collectorUID: "uid", instance: "eu"}}
	res, err := m.fire(context.Background(), j, up)
	if err != nil || res.existing || res.execution.RequestID != "req-1" {
		t.Fatalf("got %+v %v, want a new execution", res, err)
	}
	if s.reservations != 2 || up.triggers != 1 || len(s.audits) != 0 {
		t.Errorf("got %d reservations, %d triggers, audits %v; want 2, 1 and none (the reservation audits)", s.reservations, up.triggers, s.audits)
	}
}
