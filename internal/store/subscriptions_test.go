package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
)

// TestSubscriptionsMigrationKeepsTheOutbox: deliveries enqueued before subscriptions
// existed become the configured callback's, which a dispatcher started with the
// callback's URL then points at it, so none is lost across the upgrade.
func TestSubscriptionsMigrationKeepsTheOutbox(t *testing.T) {
	ctx := context.Background()
	pool, ms := unmigrated(t)
	var subs store.Migration
	for _, m := range ms {
		if m.Version == 15 {
			subs = m
			break
		}
		if _, err := pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	if subs.Version != 15 {
		t.Fatal("no migration 15")
	}
	for _, q := range []string{
		`INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, subject_key, alert, message)
			VALUES ('pe_1', 'open', 'nexthink', 'wh', 'k', 'Outlook crashes', 'outlook crashes', 'user:a', '{}', 'm')`,
		`INSERT INTO proactive_deliveries (event_id, kind, body) VALUES ('pe_1', 'opened', '{}')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, subs.SQL); err != nil {
		t.Fatalf("%s: %v", subs.Name, err)
	}
	db := store.New(pool)
	if err := db.EnsureConfigSubscription(ctx, "https://bot.example.com/hook"); err != nil {
		t.Fatal(err)
	}
	s, err := db.GetSubscription(ctx, store.ConfigSubscriptionID)
	if err != nil || s.URL != "https://bot.example.com/hook" || s.Origin != store.SubscriptionFromConfig || s.Pending != 1 || s.Locale != "en" {
		t.Fatalf("got %+v %v, want the configured callback with the delivery waiting", s, err)
	}
	claimed, err := db.ClaimProactiveDeliveries(ctx, 10, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].URL != s.URL || claimed[0].Secret != "" {
		t.Fatalf("claimed %+v %v", claimed, err)
	}
}
