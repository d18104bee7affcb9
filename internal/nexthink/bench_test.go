package nexthink

import (
	"context"
	"testing"
	"time"
)

// BenchmarkExecute measures Execute (#get_device_basic_infos for jdoe, two rows)
// against in-process nxsim with no latency and no limiter: the client's own cost
// plus nxsim's, over loopback HTTP.
//
//	go test -run '^$' -bench Execute -benchmem ./internal/nexthink/
func BenchmarkExecute(b *testing.B) {
	sim := startSim(b, nil)
	c := newClient(b, sim, "eu", "eu-client", nil)
	ctx := context.Background()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("parallel", func(b *testing.B) {
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
}
