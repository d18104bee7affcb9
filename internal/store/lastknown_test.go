package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func TestKnownValuesOnlyMoveForward(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	t0 := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	const spooler, jobs = "remote_action.x.execution.outputs.SpoolerStatus", "remote_action.x.execution.outputs.StuckJobs"
	save := func(values ...store.KnownValue) {
		t.Helper()
		if err := db.SaveKnownValues(ctx, "eu", "uid-1", values); err != nil {
			t.Fatal(err)
		}
	}
	save(store.KnownValue{Field: spooler, Value: []byte(`"Running"`), CollectedAt: t0},
		store.KnownValue{Field: jobs, Value: []byte(`0`), CollectedAt: t0})
	// An older collection does not replace a newer one; a newer one does; a field
	// given twice counts at its newest.
	save(store.KnownValue{Field: spooler, Value: []byte(`"Stopped"`), CollectedAt: t0.Add(-time.Hour)},
		store.KnownValue{Field: jobs, Value: []byte(`3`), CollectedAt: t0.Add(time.Hour)},
		store.KnownValue{Field: jobs, Value: []byte(`2`), CollectedAt: t0.Add(30 * time.Minute)})
	save() // nothing to keep
	got, err := db.KnownValues(ctx, "eu", "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		value string
		at    time.Time
	}{spooler: {`"Running"`, t0}, jobs: {`3`, t0.Add(time.Hour)}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %d values", got, len(want))
	}
	for _, v := range got {
		w := want[v.Field]
		if string(v.Value) != w.value || !v.CollectedAt.Equal(w.at) {
			t.Errorf("%s: got %s at %v, want %s at %v", v.Field, v.Value, v.CollectedAt, w.value, w.at)
		}
	}
	if other, err := db.KnownValues(ctx, "us", "uid-1"); err != nil || len(other) != 0 {
		t.Errorf("another instance: got %+v %v, want none", other, err)
	}
	if err := db.SaveKnownValues(ctx, "eu", "uid-1", []store.KnownValue{{Field: jobs, Value: []byte(`{`), CollectedAt: t0}}); err == nil {
		t.Error("a value that is not JSON was kept")
	}
}
