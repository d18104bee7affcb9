package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// TestFairShare: on two replicas, two noisy keys take the cache budget (500/s) as fast
// as they can, one with twice the callers of the other, while a quiet key asks about
// 40 times a second, its calls spread over both replicas. After a second to learn the
// demand, the quiet key is served at its demand and the noisy ones are refused but
// share the rest of the budget evenly.
func TestFairShare(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the limiter for 8 s")
	}
	const (
		rate  = 500.0
		quiet = 40.0
		run   = 8 * time.Second
	)
	replicas := newReplicas(t, 2)
	var limiters []ratelimit.Limiter
	for _, r := range replicas {
		limiters = append(limiters, r.limiters.Limiter("cache", ratelimit.Rate{PerSecond: rate, Burst: int(rate)}))
	}
	start := time.Now()
	learnt, end := start.Add(time.Second), start.Add(run)
	noisy := []struct {
		ctx     context.Context
		workers int
		tally   tally
	}{
		{ctx: ratelimit.WithCaller(context.Background(), "key_noisy"), workers: 2},
		{ctx: ratelimit.WithCaller(context.Background(), "key_loud"), workers: 1},
	}
	var running []*sync.WaitGroup
	for _, l := range limiters {
		for i := range noisy {
			running = append(running, hammer(t, noisy[i].ctx, l, noisy[i].workers, end, &noisy[i].tally))
		}
	}

	// The quiet key: one call every 25 ms, alternately on each replica.
	quietCtx := ratelimit.WithCaller(context.Background(), "key_quiet")
	var asked, served atomic.Int64
	var retryAfters []time.Duration
	tick := time.NewTicker(time.Duration(float64(time.Second) / quiet))
	defer tick.Stop()
	for k := 0; time.Now().Before(end); k++ {
		<-tick.C
		_, err := limiters[k%2].Take(quietCtx, 0)
		var lim *ratelimit.Limited
		if err != nil && !errors.As(err, &lim) {
			t.Fatal(err)
		}
		if time.Now().Before(learnt) {
			continue
		}
		asked.Add(1)
		if err == nil {
			served.Add(1)
		} else {
			retryAfters = append(retryAfters, lim.RetryAfter)
		}
	}
	for _, wg := range running {
		wg.Wait()
	}

	if got := float64(served.Load()) / float64(asked.Load()); got < 0.98 {
		t.Errorf("quiet key served %d of %d calls (%.1f %%), want at least 98 %% (Retry-After of the refusals: %v)", served.Load(), asked.Load(), 100*got, retryAfters[:min(len(retryAfters), 10)])
	}
	want := (rate - float64(asked.Load())/end.Sub(learnt).Seconds()) / 2 * end.Sub(learnt).Seconds()
	for i := range noisy {
		n := &noisy[i]
		later := countIn(n.tally.grants, learnt, end)
		if n.tally.refused == 0 || float64(later) < 0.85*want || float64(later) > 1.15*want {
			t.Errorf("%s: %d grants after the first second, %d refused; want refusals and %.0f ± 15 %% grants",
				ratelimit.CallerFrom(n.ctx), later, n.tally.refused, want)
		}
		t.Logf("%s: %d grants after the first second (fair share %.0f), %d refused", ratelimit.CallerFrom(n.ctx), later, want, n.tally.refused)
	}
	t.Logf("quiet: %d of %d served", served.Load(), asked.Load())
}

// TestFairShareSmallBudget: a budget of 10/s, where a lease carries a single cell. A
// noisy key hammers it while a quiet key asks once a second: the fair share must not
// leave the budget idle (the noisy key gets what the quiet one leaves), and the quiet
// key is still served, every time but once at most.
func TestFairShareSmallBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the limiter for 7 s")
	}
	const rate = 10.0
	l := newReplicas(t, 1)[0].limiters.Limiter("cache", ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
	start := time.Now()
	learnt, end := start.Add(time.Second), start.Add(7*time.Second)
	var noisy tally
	running := hammer(t, ratelimit.WithCaller(context.Background(), "key_noisy"), l, 2, end, &noisy)
	quietCtx := ratelimit.WithCaller(context.Background(), "key_quiet")
	asked, served := 0, 0
	for time.Now().Before(end) {
		time.Sleep(time.Second) // the quiet key's pace, not an assertion
		_, err := l.Take(quietCtx, 0)
		var lim *ratelimit.Limited
		if err != nil && !errors.As(err, &lim) {
			t.Fatal(err)
		}
		asked++
		if err == nil {
			served++
		}
	}
	running.Wait()
	later := countIn(noisy.grants, learnt, end)
	if want := (rate - 1) * end.Sub(learnt).Seconds(); float64(later) < 0.85*want {
		t.Errorf("noisy key: %d grants after the first second, want about %.0f: the budget was left idle", later, want)
	}
	if served < asked-1 {
		t.Errorf("quiet key: %d of %d served, want all but one at most", served, asked)
	}
	t.Logf("quiet: %d of %d served; noisy: %d grants after the first second, %d refused", served, asked, later, noisy.refused)
}
