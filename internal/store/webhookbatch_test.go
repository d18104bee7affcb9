package store_test

import (
	"context"
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
	pool, err := store.Open(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
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
