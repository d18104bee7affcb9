package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func TestMigrateOnceAcrossConcurrentReplicas(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	const replicas = 4
	applied := make([][]string, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := store.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = store.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != len(ms) {
		t.Errorf("migrations applied across replicas: got %d, want each of the %d exactly once", total, len(ms))
	}
	pool, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	again, err := store.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Errorf("second run: got %v, %v; want nothing applied", again, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations rows: got %d (%v), want %d", n, err, len(ms))
	}
}

func TestOpenNeverEchoesTheURL(t *testing.T) {
	_, err := store.Open(context.Background(), "postgres://user:hunter2@127.0.0.1:1/db?connect_timeout=1&%zz")
	if err == nil {
		t.Fatal("want an error for a malformed URL")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Errorf("error leaks the password: %s", got)
	}
}

// unmigrated opens a pool on a fresh schema with nothing migrated and returns it with
// the migrations, for tests that stop part way and look at the data a later one
// keeps.
func unmigrated(t *testing.T) (*pgxpool.Pool, []store.Migration) {
	t.Helper()
	pool, err := store.Open(context.Background(), testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return pool, ms
}

// TestMigrateAppliesALowerNumberAddedLater: a database migrated before a
// migration numbered below the latest existed (0007, a free slot) gets it on the
// next start.
func TestMigrateAppliesALowerNumberAddedLater(t *testing.T) {
	ctx := context.Background()
	pool, err := store.Open(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// As a database migrated by a release without 0007 is.
	if _, err := pool.Exec(ctx, `DROP TABLE v6_routes, v6_engines; DELETE FROM schema_migrations WHERE version = 7`); err != nil {
		t.Fatal(err)
	}
	got, err := store.Migrate(ctx, pool)
	if err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "0007_") {
		t.Fatalf("applied %v, %v; want only 0007", got, err)
	}
	if _, err := pool.Exec(ctx, `SELECT 1 FROM v6_routes, v6_engines`); err != nil {
		t.Fatal(err)
	}
}
