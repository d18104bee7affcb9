package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestV6EnginesListedThenReached: an Engine a process listed shows before any call
// reaches it, and not reached; a listing never undoes an observation, and an
// observation replaces a listing even when it was made earlier (its process was
// slow to write it).
func TestV6EnginesListedThenReached(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "dc", Engine: "engine-1", Down: true, DownSince: &now,
		ConsecutiveFailures: 3, LastError: "no answer", ObservedAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.ListV6Engines(ctx, "dc", []string{"engine-1", "engine-2", "engine-3"}, now); err != nil {
		t.Fatal(err)
	}
	byName := func() map[string]store.V6Engine {
		t.Helper()
		got, err := db.V6Engines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.V6Engine{}
		for _, e := range got {
			out[e.Instance+"/"+e.Engine] = e
		}
		return out
	}
	got := byName()
	if e := got["dc/engine-1"]; !e.Down || e.ConsecutiveFailures != 3 || !e.Reached() {
		t.Errorf("engine-1, down before the listing: got %+v", e)
	}
	if e, ok := got["dc/engine-2"]; !ok || e.Reached() || e.Down || !e.ObservedAt.Equal(now) {
		t.Errorf("engine-2, only listed: got %+v %v, want it not reached", e, ok)
	}
	success := now.Add(-time.Second)
	if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "dc", Engine: "engine-2", LastSuccessAt: &success,
		ObservedAt: success}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "dc", Engine: "engine-3", ConsecutiveFailures: 1,
		LastError: "timeout", ObservedAt: now.Add(-2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := db.ListV6Engines(ctx, "dc", []string{"engine-2", "engine-3"}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got = byName()
	if e := got["dc/engine-2"]; !e.Reached() || e.LastSuccessAt == nil || !e.ObservedAt.Equal(success) {
		t.Errorf("engine-2, answered before its listing was written: got %+v, want reached", e)
	}
	if e := got["dc/engine-3"]; !e.Reached() || e.ConsecutiveFailures != 1 || e.LastError != "timeout" {
		t.Errorf("engine-3, failed once: got %+v, want reached", e)
	}
}

// TestV6EngineListedAgain: listing an Engine only listed so far moves its time on
// (the pruner then keeps it), never back (a slower process's older listing); an
// Engine a call reached keeps its observation.
func TestV6EngineListedAgain(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.ListV6Engines(ctx, "dc", []string{"engine-1", "engine-2"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "dc", Engine: "engine-1", LastSuccessAt: &t0, ObservedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(30 * time.Minute)} {
		if err := db.ListV6Engines(ctx, "dc", []string{"engine-1", "engine-2"}, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.V6Engines(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("got %+v %v, want engine-1 and engine-2", got, err)
	}
	if e := got[0]; !e.Reached() || e.LastSuccessAt == nil || !e.ObservedAt.Equal(t0) {
		t.Errorf("engine-1, reached: got %+v, want its observation kept", e)
	}
	if e := got[1]; e.Reached() || !e.ObservedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("engine-2, only listed: got %+v, want it listed at %s", e, t0.Add(time.Hour))
	}
}
