package events_test

import (
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
)

func TestPresenceAt(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tc := range []struct {
		seen *time.Time
		want string
	}{
		{nil, events.PresenceUnknown},
		{&time.Time{}, events.PresenceUnknown},
		{at(0), events.PresenceOnline},
		{at(time.Hour), events.PresenceOnline},
		{at(time.Hour + time.Second), events.PresenceOffline},
		{at(90 * 24 * time.Hour), events.PresenceOffline},
		{at(-time.Minute), events.PresenceOnline}, // a clock a little ahead of ours
	} {
		if got := events.PresenceAt(tc.seen, now, time.Hour); got != tc.want {
			t.Errorf("PresenceAt(%v): got %s, want %s", tc.seen, got, tc.want)
		}
	}
}

// TestPresenceAsOf: data read while the device was online, too old now to say
// whether it still is, does not call it offline.
func TestPresenceAsOf(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	ptr := func(t time.Time) *time.Time { return &t }
	for _, tc := range []struct {
		seen *time.Time
		asOf time.Time
		want string
	}{
		{nil, at(0), events.PresenceUnknown},
		{ptr(at(10 * time.Minute)), at(5 * time.Minute), events.PresenceOnline},
		{ptr(at(90 * time.Minute)), at(80 * time.Minute), events.PresenceUnknown}, // online when read, 80 min ago
		{ptr(at(3 * time.Hour)), at(10 * time.Minute), events.PresenceOffline},    // silent for hours when read
		{ptr(at(90 * time.Minute)), time.Time{}, events.PresenceOffline},          // no read time: as PresenceAt
	} {
		if got := events.PresenceAsOf(tc.seen, tc.asOf, now, time.Hour); got != tc.want {
			t.Errorf("PresenceAsOf(%v, %v): got %s, want %s", tc.seen, tc.asOf, got, tc.want)
		}
	}
}
