package bench

import (
	"strings"
	"testing"
	"time"
)

func TestGrowth(t *testing.T) {
	series := func(vals ...float64) []soakSample {
		out := make([]soakSample, len(vals))
		for i, v := range vals {
			out[i] = soakSample{at: time.Duration(i) * 5 * time.Second, goroutines: v}
		}
		return out
	}
	lim := growthLimit{name: "goroutines", value: func(s soakSample) float64 { return s.goroutines }, ratio: 0.2, abs: 10}
	tests := []struct {
		name    string
		samples []soakSample
		warmup  time.Duration
		grew    bool
		first   float64
		last    float64
	}{
		{"flat", series(100, 100, 101, 99, 100, 102, 100, 99, 101), 0, false, 100, 100},
		{"noise within the slack", series(100, 130, 100, 110, 100, 100, 125, 125, 125), 0, false, 100, 125},
		{"a leak", series(100, 110, 120, 130, 140, 150, 160, 170, 180), 0, true, 110, 170},
		{"growth only in the warm-up", series(10, 40, 80, 100, 100, 101, 99, 100, 100, 100, 100), 15 * time.Second, false, 100, 100},
		{"a spike is not a trend", series(100, 100, 100, 100, 500, 100, 100, 100, 100), 0, false, 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := growth(tt.samples, tt.warmup, lim)
			if err != nil {
				t.Fatal(err)
			}
			if v.grew != tt.grew || v.first != tt.first || v.last != tt.last {
				t.Errorf("got grew %v, first %v, last %v; want %v, %v, %v", v.grew, v.first, v.last, tt.grew, tt.first, tt.last)
			}
		})
	}
}

func TestGrowthNeedsSamples(t *testing.T) {
	samples := []soakSample{{at: 0}, {at: time.Minute}, {at: 2 * time.Minute}}
	if _, err := growth(samples, 0, soakLimits()[0]); err == nil {
		t.Error("got no error with 3 samples, want one")
	}
}

func TestParseProcessMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 187
go_goroutines_other 3
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 9.4371840e+07
go_memstats_heap_inuse_bytes 4.2e+07
`
	s, err := parseProcessMetrics(strings.NewReader(text))
	if err != nil || s.goroutines != 187 || s.rss != 94371840 || s.heap != 42e6 {
		t.Errorf("got %+v, %v; want 187 goroutines, 94371840 RSS, 42e6 heap, nil", s, err)
	}
	if _, err := parseProcessMetrics(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Error("got no error without process_resident_memory_bytes, want one")
	}
}
