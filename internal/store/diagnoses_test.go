package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func TestLatestDiagnosis(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, age := range []time.Duration{3 * time.Hour, time.Minute, 10 * time.Minute} {
		d := store.Diagnosis{ID: string(rune('a' + i)), Topic: "outlook", CollectorUID: "uid-1", Instance: "eu",
			DeviceName: "PC-1", DiagnosedAt: now.Add(-age), Source: "live", Body: []byte(`{"n":` + string(rune('0'+i)) + `}`)}
		if err := db.SaveDiagnosis(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.LatestDiagnosis(ctx, "outlook", "uid-1", "eu", now.Add(-time.Hour))
	if err != nil || got.ID != "b" || string(got.Body) != `{"n": 1}` {
		t.Errorf("got %+v %v, want the one made a minute ago", got, err)
	}
	if _, err := db.LatestDiagnosis(ctx, "outlook", "uid-1", "eu", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("none after now: got %v, want ErrNotFound", err)
	}
	if _, err := db.LatestDiagnosis(ctx, "onedrive", "uid-1", "eu", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other topic: got %v, want ErrNotFound", err)
	}
}
