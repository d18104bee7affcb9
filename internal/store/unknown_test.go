package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestUnknownIdentifiers: what an instance did not know is remembered for its
// time-to-live, whatever the case of the identifier, per instance.
func TestUnknownIdentifiers(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := db.RememberUnknown(ctx, "upn", "Nobody@Example.com", []string{"eu", "us"}, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Already expired when recorded: never answered.
	if err := db.RememberUnknown(ctx, "upn", "gone@example.com", []string{"eu"}, now.Add(-time.Hour), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := db.UnknownOn(ctx, "upn", "nobody@example.COM")
	if err != nil || len(got) != 2 || !got["eu"].Equal(now) || !got["us"].Equal(now) {
		t.Errorf("remembered: got %v %v, want eu and us at %v", got, err, now)
	}
	for _, q := range [][2]string{{"upn", "gone@example.com"}, {"email", "nobody@example.com"}, {"upn", "other@example.com"}} {
		if got, err := db.UnknownOn(ctx, q[0], q[1]); err != nil || len(got) != 0 {
			t.Errorf("%s=%s: got %v %v, want nothing", q[0], q[1], got, err)
		}
	}
	// Remembering again moves the time on; an instance answering later is added.
	later := now.Add(time.Minute)
	if err := db.RememberUnknown(ctx, "upn", "nobody@example.com", []string{"eu"}, later, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.UnknownOn(ctx, "upn", "nobody@example.com"); !got["eu"].Equal(later) || !got["us"].Equal(now) {
		t.Errorf("remembered again: got %v", got)
	}
}
