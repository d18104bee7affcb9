package remoteactions

import (
	"testing"
	"time"
)

// TestWentQuiet: only a device the cache read online and would call offline now is
// asked of its instance; one already offline when read, one online now, and one
// never seen are not.
func TestWentQuiet(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	m := &manager{now: func() time.Time { return now }, onlineWithin: time.Hour}
	at := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	for _, tt := range []struct {
		name     string
		lastSeen *time.Time
		readAgo  time.Duration
		want     bool
	}{
		{"online now", at(30 * time.Minute), 10 * time.Minute, false},
		{"online when read, drifted since", at(70 * time.Minute), 50 * time.Minute, true},
		{"seen just before the read", at(61 * time.Minute), 60 * time.Minute, true},
		{"offline when read", at(3 * time.Hour), 50 * time.Minute, false},
		{"never seen", nil, 10 * time.Minute, false},
	} {
		if got := m.wentQuiet(tt.lastSeen, now.Add(-tt.readAgo)); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
