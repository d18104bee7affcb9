package fleet

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkNew generates fleets and reports the live heap they hold (heap-MB) next to
// the generation time.
//
//	go test -run '^$' -bench New -benchtime 3x ./internal/nxsim/fleet/
func BenchmarkNew(b *testing.B) {
	for _, size := range []int{100_000, 500_000} {
		b.Run(fmt.Sprintf("devices=%d", size), func(b *testing.B) {
			var f *Fleet
			for b.Loop() {
				var err error
				f, err = New(Config{Size: size, Seed: 1, Prefix: "EU", Scenarios: true})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var before, after runtime.MemStats
			f = nil
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, _ = New(Config{Size: size, Seed: 1, Prefix: "EU", Scenarios: true})
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
			runtime.KeepAlive(f)
		})
	}
}

// BenchmarkScanDevices measures one full scan of 100 000 devices with their sessions.
func BenchmarkScanDevicesWithSessions(b *testing.B) {
	f, err := New(Config{Size: 100_000, Seed: 1, Prefix: "EU", Scenarios: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	from := time.Now().Add(-7 * 24 * time.Hour)
	for b.Loop() {
		n := 0
		_ = f.Scan(ctx, "devices", from, time.Time{}, func(r Row) error {
			return f.Related(ctx, r, "session.events", from, time.Time{}, func(Row) error { n++; return nil })
		})
	}
}
