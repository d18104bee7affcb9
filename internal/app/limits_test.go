package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestTenantSeesAtMostTheConfiguredRate runs two replicas (each an ingress and a
// devices worker, sharing NATS and PostgreSQL) and drives both with identifications
// of unknown users, each of which misses the cache and asks the tenant live. However
// hard the chatbots push, nxsim counts no more NQL calls than
// MAX_ENGINE_REQUESTS_PER_SECOND allows the deployment as a whole, and the chatbots
// get 429 with Retry-After for the rest.
func TestTenantSeesAtMostTheConfiguredRate(t *testing.T) {
	sim := discoverytest.StartSim(t, nil)
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu").Instances
	const rate = 5.0
	cfg.Limits.EngineRequestsPerSecond = rate
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	baseA, _ := start(t, cfg, "ingress", "devices")
	baseB, _ := start(t, cfg, "ingress", "devices")
	key := apiKey(t, cfg)
	clients := []*apiclient.Client{apiclient.New(baseA, key), apiclient.New(baseB, key)}
	before := discoverytest.Counters(t, sim, "eu").Queries["#get_device_basic_infos"]

	const window = 3 * time.Second
	var ok, limited atomic.Int64
	var other atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 24 { // enough that some would wait longer than the live patience (2 s)
		wg.Go(func() {
			for i := 0; time.Since(start) < window; i++ {
				_, err := clients[w%2].Identify(context.Background(), events.KeyUsername, fmt.Sprintf("nobody%d_%d", w, i))
				var p *problem.Error
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &p) && p.Code == problem.RateLimited && p.RetryAfter > 0:
					limited.Add(1)
				default:
					other.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	calls := discoverytest.Counters(t, sim, "eu").Queries["#get_device_basic_infos"] - before
	// GCRA admits a burst of one second's worth, then the rate.
	if limit := rate + rate*elapsed + 1; float64(calls) > limit {
		t.Errorf("nxsim counted %d NQL calls in %.1fs from two replicas, want at most %.0f", calls, elapsed, limit)
	}
	if ok.Load() == 0 || limited.Load() == 0 {
		t.Errorf("answers: %d ok, %d rate limited; want both", ok.Load(), limited.Load())
	}
	if v := other.Load(); v != nil {
		t.Errorf("an answer was neither 200 nor 429 with Retry-After: %v", v)
	}
	t.Logf("%.1fs: %d NQL calls reached the tenant, %d answers, %d rate limited", elapsed, calls, ok.Load(), limited.Load())
}
