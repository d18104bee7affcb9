package cli

import (
	"testing"
	"time"
)

func TestSinceFlag(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"2026-05-01T08:30:00Z", time.Date(2026, 5, 1, 8, 30, 0, 0, time.UTC)},
		{"2026-05-01T10:30:00+02:00", time.Date(2026, 5, 1, 8, 30, 0, 0, time.UTC)},
		{"-1h", time.Time{}},
		{"yesterday", time.Time{}},
		{"2026-05-01", time.Time{}},
	} {
		got, err := sinceFlag(tt.in, now)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("%q: got %s, want refused", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%q: got %s %v, want %s", tt.in, got, err, tt.want)
		}
	}
}
