package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestFinishedAttemptsInOneBatch: attempts recorded together say of their
// subscription what they would one at a time, in their order (a success, then a
// failure, leaves one failure counted; a dead delivery pauses it); a claim lost
// meanwhile (acknowledged: cancelled) is reported and changes nothing but its
// attempt's record.
func TestFinishedAttemptsInOneBatch(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	db := store.New(pool)
	if err := db.EnsureConfigSubscription(ctx, "https://bot.example.com/hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateSubscription(ctx, store.NewSubscription{ID: "sub_b", URL: "https://b.example.com/hook", Secret: "whsec_x"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, subject_key, alert, message)
			VALUES ('pe_1', 'open', 'nexthink', 'wh', 'k', 'Outlook crashes', 'outlook crashes', 'user:a', '{}', 'm')`,
		`UPDATE proactive_subscriptions SET failures = 2 WHERE id = 'sub_b'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{store.ConfigSubscriptionID, store.ConfigSubscriptionID, "sub_b", "sub_b", "sub_b"} {
		if _, err := pool.Exec(ctx, `INSERT INTO proactive_deliveries (event_id, kind, body, subscription_id) VALUES ('pe_1', 'opened', '{}', $1)`, sub); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := db.ClaimProactiveDeliveries(ctx, 10, time.Minute)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claimed %d (%v), want 5", len(claimed), err)
	}
	// The second delivery is cancelled meanwhile: its claim is lost.
	if _, err := pool.Exec(ctx, `UPDATE proactive_deliveries SET state = 'cancelled' WHERE id = $1`, claimed[1].ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ok := store.DeliveryAttempt{StartedAt: now, Duration: time.Millisecond, Status: 200}
	bad := store.DeliveryAttempt{StartedAt: now, Duration: time.Millisecond, Status: 500, Error: "HTTP 500"}
	got, err := db.FinishProactiveDeliveries(ctx, []store.FinishedDelivery{
		{Delivery: claimed[0].ProactiveDelivery, Attempt: ok, State: store.DeliveryDelivered},
		{Delivery: claimed[1].ProactiveDelivery, Attempt: ok, State: store.DeliveryDelivered},
		{Delivery: claimed[2].ProactiveDelivery, Attempt: ok, State: store.DeliveryDelivered},
		{Delivery: claimed[3].ProactiveDelivery, Attempt: bad, State: store.DeliveryPending, RetryIn: time.Minute},
		{Delivery: claimed[4].ProactiveDelivery, Attempt: bad, State: store.DeliveryDead},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, true, true}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] ||
		got[2] != want[2] || got[3] != want[3] || got[4] != want[4] {
		t.Errorf("got claims kept %v, want %v", got, want)
	}
	ds, err := db.ProactiveDeliveries(ctx, "pe_1")
	if err != nil {
		t.Fatal(err)
	}
	states := map[int64]string{}
	for _, d := range ds {
		states[d.ID] = d.State
	}
	for i, want := range []string{store.DeliveryDelivered, store.DeliveryCancelled, store.DeliveryDelivered, store.DeliveryPending, store.DeliveryDead} {
		if states[claimed[i].ID] != want {
			t.Errorf("delivery %d: got %s, want %s", i, states[claimed[i].ID], want)
		}
	}
	for i := range claimed {
		as, err := db.ProactiveAttempts(ctx, claimed[i].ID)
		if err != nil || len(as) != 1 {
			t.Errorf("delivery %d: got %d attempts recorded (%v), want 1", i, len(as), err)
		}
	}
	cfg, err := db.GetSubscription(ctx, store.ConfigSubscriptionID)
	if err != nil || cfg.Failures != 0 || cfg.State != "active" {
		t.Errorf("configured callback: got %+v (%v), want active with no failure", cfg, err)
	}
	b, err := db.GetSubscription(ctx, "sub_b")
	if err != nil || b.Failures != 2 || b.State != "paused" || b.LastError != "HTTP 500" || b.LastSuccessAt == nil {
		t.Errorf("sub_b: got failures %d state %s last error %q (%v), want the two failures after its success, paused", b.Failures, b.State, b.LastError, err)
	}
}

// TestBatchRecordedMeanwhile: a batch records its webhooks last, with their
// outcomes; when another transaction records one of them after the batch looked,
// the batch fails as a whole (ErrRecordedMeanwhile) and leaves nothing behind, and
// applied again it finds that webhook a duplicate and does the rest.
func TestBatchRecordedMeanwhile(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Postgres(t)
	db := store.New(pool)
	webhook := func(key, user string) store.WebhookApply {
		return store.WebhookApply{
			Record: store.WebhookRecord{DedupeKey: key, WebhookID: "wh_" + key, Source: "nexthink", ReceivedAt: time.Now(),
				Outcome: store.WebhookOpened, Monitor: "Slow PC", AlertStatus: "open"},
			Effects: store.ProactiveEffects{Open: []store.NewProactiveEvent{{ID: "pe_" + key, SubjectKey: "user:" + user,
				UserName: user, Alert: []byte(`{}`), Message: "m"}}},
		}
	}
	batch := []store.WebhookApply{webhook("k1", "ann"), webhook("k2", "bob")}
	render := func(store.ProactiveEvent, string, int64, string) ([]byte, error) { return []byte(`{}`), nil }

	// Another transaction records k2 and holds it uncommitted while the batch runs.
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback(ctx) }()
	if _, err := other.Exec(ctx, `INSERT INTO webhook_deliveries (dedupe_key, webhook_id, source, received_at, outcome)
		VALUES ('k2', 'wh_k2', 'nexthink', now(), 'opened')`); err != nil {
		t.Fatal(err)
	}
	var otherPID int32
	if err := other.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&otherPID); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() {
		_, err := db.ApplyWebhooks(ctx, batch, render)
		failed <- err
	}()
	// The batch has looked and waits on k2's record: the other transaction commits.
	testenv.Eventually(t, "the batch waiting on the other transaction", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`,
			otherPID).Scan(&waiting)
		return err == nil && waiting
	})
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; !errors.Is(err, store.ErrRecordedMeanwhile) {
		t.Fatalf("got %v, want ErrRecordedMeanwhile", err)
	}
	evs, err := db.ProactiveEvents(ctx, "")
	if err != nil || len(evs) != 0 {
		t.Fatalf("got %d events (%v) after the failed batch, want none", len(evs), err)
	}

	applied, err := db.ApplyWebhooks(ctx, batch, render)
	if err != nil {
		t.Fatal(err)
	}
	if applied[0].Outcome != store.WebhookOpened || len(applied[0].Opened) != 1 || !applied[1].Duplicate {
		t.Fatalf("got %+v, want k1 opened and k2 a duplicate", applied)
	}
	ds, err := db.WebhookDeliveries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range ds {
		got[d.WebhookID] = d.Outcome
	}
	if len(got) != 2 || got["wh_k1"] != store.WebhookOpened || got["wh_k2"] != store.WebhookOpened {
		t.Errorf("got records %v, want wh_k1 and wh_k2 opened", got)
	}
}
