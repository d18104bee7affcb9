package nxql_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// fleetSource presents a fleet as an nxql.Source (the fleet's Row is its own
// named type, so its methods need this thin adapter).
type fleetSource struct{ f *fleet.Fleet }

func (s fleetSource) Scan(ctx context.Context, table string, from, to time.Time, fn func(nxql.Row) error) error {
	return s.f.Scan(ctx, table, from, to, func(r fleet.Row) error { return fn(r) })
}

func (s fleetSource) Related(ctx context.Context, obj nxql.Row, table string, from, to time.Time, fn func(nxql.Row) error) error {
	return s.f.Related(ctx, obj, table, from, to, func(r fleet.Row) error { return fn(r) })
}

func (s fleetSource) Lookup(ctx context.Context, table, field string, values []string) ([]nxql.Row, bool) {
	rows, ok := s.f.Lookup(ctx, table, field, values)
	out := make([]nxql.Row, len(rows))
	for k, r := range rows {
		out[k] = r
	}
	return out, ok
}

// fixedNow is the clock of every test fleet: results do not move while a test runs.
var fixedNow = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

func newFleet(t testing.TB, size int, seed int64) *fleet.Fleet {
	t.Helper()
	f, err := fleet.New(fleet.Config{Size: size, Seed: seed, Prefix: "EU", Scenarios: true,
		Clock: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func run(t testing.TB, f *fleet.Fleet, text string, platforms ...string) *nxql.Result {
	t.Helper()
	q, err := nxql.Compile(text, nxql.NewSchema())
	if err != nil {
		t.Fatalf("compile %s: %v", text, err)
	}
	res, err := q.Run(context.Background(), fleetSource{f}, nxql.RunOptions{Now: fixedNow, Platforms: platforms})
	if err != nil {
		t.Fatalf("run %s: %v", text, err)
	}
	return res
}
