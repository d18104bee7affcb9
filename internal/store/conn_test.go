package store_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestConnectionFailuresAreUnavailable: when PostgreSQL cannot be reached (the
// connections the pool holds are reset, new ones are refused), whatever query fails
// is classified service_unavailable with a Retry-After, not internal; a query that
// fails on its own context is not; and the pool recovers by itself.
func TestConnectionFailuresAreUnavailable(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	ctx := context.Background()
	pool, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	db := store.New(pool)
	if _, err := db.InstancesHealth(ctx); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"a read on a connection that was reset", func() error { _, err := db.InstancesHealth(ctx); return err }},
		{"a write when new connections are refused", func() error { return db.MarkInstanceDown(ctx, "eu") }},
		{"a lease on a connection of its own", func() error { _, _, err := db.TryPollerLease(ctx, "eu"); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if p := problem.From(err); err == nil || p.Code != problem.ServiceUnavailable || p.RetryAfter == 0 {
				t.Errorf("got %v (%v), want service_unavailable with a Retry-After", p, err)
			}
		})
	}
	proxy.Restore()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.InstancesHealth(cancelled); problem.CodeOf(err) == problem.ServiceUnavailable {
		t.Errorf("a cancelled query: got %v, want it not to blame the database", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.InstancesHealth(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not recover: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
