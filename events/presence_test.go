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
