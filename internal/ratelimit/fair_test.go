package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// quietKey asks limiters for a call every pace, in turn, until stopped, and keeps
// whether each was served.
type quietKey struct {
	mu     sync.Mutex
	served []bool
	retry  []time.Duration // Retry-After of the refusals
}

func runQuiet(t *testing.T, limiters []ratelimit.Limiter, pace time.Duration) (*quietKey, *load) {
	q := &quietKey{}
	ld := &load{stop: make(chan struct{})}
	t.Cleanup(ld.Stop)
	ctx := ratelimit.WithCaller(context.Background(), "key_quiet")
	ld.wg.Go(func() {
		tick := time.NewTicker(pace) // the key's pace, not an assertion
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-ld.stop:
				return
			case <-tick.C:
			}
			_, err := limiters[k%len(limiters)].Take(ctx, 0)
			var lim *ratelimit.Limited
			if err != nil && !errors.As(err, &lim) && !isLeaseFailure(err) {
				t.Errorf("quiet key: %v", err)
				return
			}
			q.mu.Lock()
			q.served = append(q.served, err == nil)
			if lim != nil {
				q.retry = append(q.retry, lim.RetryAfter)
			}
			q.mu.Unlock()
		}
	})
	return q, ld
}

// last says how many of the last n calls were served, and whether there were n.
func (q *quietKey) last(n int) (served int, enough bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.served) < n {
		return 0, false
	}
	for _, ok := range q.served[len(q.served)-n:] {
		if ok {
			served++
		}
	}
	return served, true
}

// TestFairShare: on two replicas, two noisy keys take the cache budget (500/s) as fast
// as they can, one with twice the callers of the other, while a quiet key asks about
// 40 times a second, its calls spread over both replicas. Once the limiters have
// learnt the demand, the quiet key is served (98 of its last 100 calls) while the
// noisy ones are refused and share the rest evenly (neither gets 25 % more than the
// other, where without fairness the one with twice the callers would get about
// twice as much). These are conditions waited on, not measured against a clock: a
// slow machine only makes them take longer.
func TestFairShare(t *testing.T) {
	t.Parallel()
	const rate = 500.0
	replicas := newReplicas(t, 2)
	var limiters []ratelimit.Limiter
	for _, r := range replicas {
		limiters = append(limiters, r.limiters.Limiter("cache", ratelimit.Rate{PerSecond: rate, Burst: int(rate)}))
	}
	noisy := []struct {
		ctx     context.Context
		workers int
		tally   tally
	}{
		{ctx: ratelimit.WithCaller(context.Background(), "key_noisy"), workers: 2},
		{ctx: ratelimit.WithCaller(context.Background(), "key_loud"), workers: 1},
	}
	var loads []*load
	for _, l := range limiters {
		for i := range noisy {
			loads = append(loads, hammer(t, noisy[i].ctx, l, noisy[i].workers, &noisy[i].tally))
		}
	}
	quiet, quietLoad := runQuiet(t, limiters, time.Second/40)
	loads = append(loads, quietLoad)

	// Compare the noisy keys from a point on, moved forward while they are not fair
	// yet, so the learning does not weigh on the comparison.
	from := time.Now()
	var a, b int
	eventually(t, "the quiet key served and the noisy ones sharing evenly", func() (bool, string) {
		served, enough := quiet.last(100)
		a, b = noisy[0].tally.since(from), noisy[1].tally.since(from)
		fair := a >= 200 && b >= 200 && float64(a) <= 1.25*float64(b) && float64(b) <= 1.25*float64(a)
		if !fair && (a > 2000 || b > 2000) {
			from = time.Now()
		}
		return enough && served >= 98 && fair, fmt.Sprintf("quiet key: %d of its last 100 calls served; noisy keys: %d and %d grants", served, a, b)
	})
	for _, ld := range loads {
		ld.Stop()
	}
	for i := range noisy {
		if noisy[i].tally.refusals() == 0 {
			t.Errorf("%s was never refused: the budget was not short", ratelimit.CallerFrom(noisy[i].ctx))
		}
	}
	t.Logf("noisy keys: %d and %d grants, %d and %d refused", a, b, noisy[0].tally.refusals(), noisy[1].tally.refusals())
}

// TestFairShareSmallBudget: a budget of 10/s, where a lease carries a single cell. A
// noisy key hammers it while a quiet key asks once a second: the fair share must not
// leave the budget idle (the noisy key eventually gets 85 % of the budget over 3 s:
// what the quiet one leaves, which an idle reserve would not give it), and the quiet
// key is served (its last 5 calls).
func TestFairShareSmallBudget(t *testing.T) {
	t.Parallel()
	const rate = 10.0
	l := newReplicas(t, 1)[0].limiters.Limiter("cache", ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
	var noisy tally
	noisyLoad := hammer(t, ratelimit.WithCaller(context.Background(), "key_noisy"), l, 2, &noisy)
	quiet, quietLoad := runQuiet(t, []ratelimit.Limiter{l}, time.Second)
	eventually(t, "the quiet key served and the budget used", func() (bool, string) {
		served, enough := quiet.last(5)
		recent := noisy.since(time.Now().Add(-3 * time.Second))
		used := enough && float64(recent) >= 0.85*(rate-1)*3
		return used && served == 5, fmt.Sprintf("quiet key: %d of its last 5 calls served; noisy key: %d grants in the last 3 s", served, recent)
	})
	quietLoad.Stop()
	noisyLoad.Stop()
	t.Logf("noisy key: %d grants, %d refused", noisy.n.Load(), noisy.refusals())
}
