package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func newExecution(id string) store.Execution {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return store.Execution{ID: id, RemoteAction: "#repair_onedrive", Instance: "eu", CollectorUID: "uid-" + id,
		DeviceName: "PC-" + id, Params: map[string]string{"A": "1"}, Reason: "r", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestExecutionLifecycle: reserve, trigger, poll to the end; every state is recorded
// once, and so is the audit record's outcome.
func TestExecutionLifecycle(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	e := newExecution("ex_1")
	res, err := db.ReserveExecution(ctx, e, store.AuditRecord{APIKeyID: "key_1", RemoteAction: e.RemoteAction, Device: "PC-ex_1"}, nil, true)
	auditID := res.AuditID
	if err != nil || !res.Reserved || auditID == 0 {
		t.Fatalf("reserve: got %+v %v", res, err)
	}
	got, err := db.MarkTriggered(ctx, e.ID, "req-1", e.ExpiresAt, auditID)
	if err != nil || got.Status != store.ExecPending || got.RequestID != "req-1" || got.Version != 2 || got.Params["A"] != "1" {
		t.Fatalf("triggered: got %+v %v", got, err)
	}
	if _, err := db.MarkTriggered(ctx, e.ID, "req-2", e.ExpiresAt, auditID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second trigger: got %v, want ErrNotFound", err)
	}
	lease, ok, err := db.TryPollerLease(ctx, "eu")
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	defer lease.Release(ctx)
	if _, held, err := db.TryPollerLease(ctx, "eu"); held || err != nil {
		t.Errorf("second lease: got %v %v, want refused", held, err)
	}
	open, err := lease.OpenExecutions(ctx, 10)
	if err != nil || len(open) != 1 {
		t.Fatalf("open: got %d %v", len(open), err)
	}
	running := []store.ExecutionChange{{ID: e.ID, Status: store.ExecInProgress, StatusDetails: "Executing script", Source: store.SourcePoller}}
	for i, want := range []int{1, 0} { // applying the same change again changes nothing
		changed, err := lease.Apply(ctx, running)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != want {
			t.Errorf("apply #%d: got %d changed, want %d", i+1, len(changed), want)
		}
	}
	done, err := lease.Apply(ctx, []store.ExecutionChange{{ID: e.ID, Status: store.ExecSuccess, StatusDetails: "ok",
		Outputs: map[string]any{"IsOnline": "Yes"}, Source: store.SourcePoller}})
	if err != nil || len(done) != 1 || done[0].Outputs["IsOnline"] != "Yes" || done[0].Version != 4 {
		t.Fatalf("success: got %+v %v", done, err)
	}
	late, err := lease.Apply(ctx, []store.ExecutionChange{{ID: e.ID, Status: store.ExecExpired, Source: store.SourceExpiry}})
	if err != nil || len(late) != 0 {
		t.Errorf("a final execution changed again: %+v %v", late, err)
	}
	states, err := db.ExecutionStates(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, s := range states {
		seq = append(seq, fmt.Sprintf("%d:%s:%s", s.Version, s.Status, s.Source))
	}
	if got, want := fmt.Sprint(seq), "[2:pending:trigger 3:in_progress:poller 4:success:poller]"; got != want {
		t.Errorf("states: got %s, want %s", got, want)
	}
	audit, err := db.AuditRecords(ctx, 10)
	if err != nil || len(audit) != 1 || audit[0].Outcome != store.AuditTriggered || audit[0].ExecutionID != e.ID || audit[0].DecidedAt == nil {
		t.Errorf("audit: got %+v %v", audit, err)
	}
}

// TestIdempotencyKeyBindsOnce: concurrent reservations with one key bind it once;
// the others see the binding and record nothing.
func TestIdempotencyKeyBindsOnce(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	results := make([]struct {
		ok       bool
		existing store.IdempotencyKey
		err      error
	}, n)
	for i := range n {
		wg.Go(func() {
			e := newExecution(fmt.Sprintf("ex_%d", i))
			key := &store.IdempotencyKey{APIKeyID: "key_1", Key: "k-1", RequestHash: "h"}
			res, err := db.ReserveExecution(ctx, e, store.AuditRecord{RemoteAction: e.RemoteAction, Device: e.DeviceName}, key, false)
			results[i].existing, results[i].ok, results[i].err = res.Bound, res.Reserved, err
		})
	}
	wg.Wait()
	winners, winner := 0, ""
	for i, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ok {
			winners++
			winner = fmt.Sprintf("ex_%d", i)
		}
	}
	if winners != 1 {
		t.Fatalf("got %d reservations, want 1", winners)
	}
	for _, r := range results {
		if !r.ok && (r.existing.ExecutionID != winner || r.existing.RequestHash != "h") {
			t.Errorf("loser saw %+v, want %s", r.existing, winner)
		}
	}
	// Another API key may use the same key.
	if res, err := db.ReserveExecution(ctx, newExecution("ex_other"), store.AuditRecord{RemoteAction: "#x", Device: "d"},
		&store.IdempotencyKey{APIKeyID: "key_2", Key: "k-1", RequestHash: "h2"}, true); !res.Reserved || err != nil {
		t.Errorf("other API key: got %+v %v, want reserved", res, err)
	}
	// A released reservation frees its key.
	k, err := db.IdempotentExecution(ctx, "key_2", "k-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ReleaseExecution(ctx, k.ExecutionID, 0, "upstream_unavailable", "refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.IdempotentExecution(ctx, "key_2", "k-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after release: got %v, want ErrNotFound", err)
	}
}

// TestPollerLeaseGoesWithItsSession: when the lease's session ends, another takes it.
func TestPollerLeaseGoesWithItsSession(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	l1, ok, err := db.TryPollerLease(ctx, "eu")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	pid := testenv.LeaseHolder(t, pool, "poller", "eu")
	if pid == 0 {
		t.Fatal("PostgreSQL reports no holder of the lease just taken")
	}
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := l1.Alive(ctx); err == nil {
		t.Error("a terminated lease reports alive")
	}
	testenv.Eventually(t, "the lease of a terminated session released", func() bool {
		l2, ok, err := db.TryPollerLease(ctx, "eu")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			l2.Release(ctx)
		}
		return ok
	})
}
