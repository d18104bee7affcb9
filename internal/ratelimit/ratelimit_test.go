package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestBudgetAcrossReplicas: two and three replicas (each its own pool on one
// database) take from the cache's budget of 500/s (burst 500) as fast as they can for
// 22 s; the last replica stops after 11 s. Every 10 s window from the first second on
// holds within 5 % of 5 000 grants; once the last replica is idle the others use its
// share; and the database sees a statement per lease, far fewer than one per call.
func TestBudgetAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the limiter for 22 s")
	}
	t.Parallel()
	const (
		rate   = 500.0
		window = 10 * time.Second
		run    = 22 * time.Second
	)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			t.Parallel()
			replicas := newReplicas(t, n)
			ctx := context.Background()
			start := time.Now()
			half, end := start.Add(run/2), start.Add(run)
			tallies := make([]*tally, n)
			var running []*sync.WaitGroup
			for i, r := range replicas {
				tallies[i] = &tally{}
				stop := end
				if i == n-1 {
					stop = half
				}
				l := r.limiters.Limiter("cache", ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
				running = append(running, hammer(t, ctx, l, 2, stop, tallies[i]))
			}
			for _, wg := range running {
				wg.Wait()
			}

			var all []time.Time
			var statements int64
			refused := 0
			for i, tl := range tallies {
				all = append(all, tl.grants...)
				statements += replicas[i].statements.n.Load()
				refused += tl.refused
			}
			want := rate * window.Seconds()
			lo, hi := checkWindows(t, all, start.Add(time.Second), end, window, want)
			// The replicas still running had the whole budget once the last one stopped.
			busy := 0
			for _, tl := range tallies[:n-1] {
				busy += countIn(tl.grants, half.Add(time.Second), end)
			}
			if share := float64(busy) / (rate * (run/2 - time.Second).Seconds()); share < 0.95 {
				t.Errorf("after replica %d stopped the others had %.0f %% of the budget, want at least 95 %%", n, 100*share)
			}
			perThousand := 1000 * float64(statements) / float64(len(all))
			if perThousand > 100 {
				t.Errorf("%d statements for %d grants (%.0f per 1 000), want leases, not calls", statements, len(all), perThousand)
			}
			t.Logf("%d grants, %d refused, 10 s windows %d..%d (budget %.0f), %d statements (%.1f per 1 000 grants)",
				len(all), refused, lo, hi, want, statements, perThousand)
		})
	}
}

// TestPatientBudgetAcrossReplicas: three replicas with thirty callers each take
// from an instance's NQL budget (40/s, burst 40) the way the Nexthink client does:
// each is willing to wait up to 2 s and makes its call when its wait is over. Every
// 10 s window of calls made from the first second on holds within 5 % of 400.
func TestPatientBudgetAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the limiter for 16 s")
	}
	t.Parallel()
	const (
		rate   = 40.0
		window = 10 * time.Second
	)
	replicas := newReplicas(t, 3)
	ctx := context.Background()
	start := time.Now()
	end := start.Add(16 * time.Second)
	var mu sync.Mutex
	var calls []time.Time
	var wg sync.WaitGroup
	for _, r := range replicas {
		l := r.limiters.Limiter("nql:eu", ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
		for range 30 {
			wg.Go(func() {
				for time.Now().Before(end) {
					d, err := l.Take(ctx, 2*time.Second)
					var lim *ratelimit.Limited
					switch {
					case errors.As(err, &lim):
						time.Sleep(lim.RetryAfter) // as the client's retry would
						continue
					case err != nil:
						t.Error(err)
						return
					case d > 2*time.Second:
						t.Errorf("granted a wait of %v, beyond the caller's 2s", d)
					}
					time.Sleep(d)
					mu.Lock()
					calls = append(calls, time.Now())
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	var statements int64
	for _, r := range replicas {
		statements += r.statements.n.Load()
	}
	lo, hi := checkWindows(t, calls, start.Add(time.Second), end, window, rate*window.Seconds())
	t.Logf("%d calls, 10 s windows %d..%d (budget %.0f), %d statements", len(calls), lo, hi, rate*window.Seconds(), statements)
}

// checkWindows checks that every window of length w from start to end, in steps of
// 100 ms, holds want ± 5 % times; it returns the fewest and the most.
func checkWindows(t *testing.T, times []time.Time, start, end time.Time, w time.Duration, want float64) (lo, hi int) {
	t.Helper()
	counts := windowCounts(times, start, end, w, 100*time.Millisecond)
	lo, hi = counts[0], counts[0]
	for k, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
		if c < int(0.95*want) || c > int(1.05*want) {
			t.Errorf("window starting %v after the first: %d, want %.0f ± 5 %%", time.Duration(k)*100*time.Millisecond, c, want)
		}
	}
	return lo, hi
}

// TestWaitWithinPatience: a caller willing to wait gets a cell ahead of time and the
// wait until it; one that is not is refused, and its refusal reserves nothing.
func TestWaitWithinPatience(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	l := ratelimit.NewShared(db).Limiter("k", ratelimit.Rate{PerSecond: 10, Burst: 1})
	ctx := context.Background()
	if d, err := l.Take(ctx, 0); err != nil || d != 0 {
		t.Fatalf("first call: got %v, %v; want immediate", d, err)
	}
	d, err := l.Take(ctx, time.Second)
	if err != nil || d <= 0 || d > 100*time.Millisecond {
		t.Fatalf("second call with patience: got %v, %v; want a wait of up to 100ms", d, err)
	}
	_, err = l.Take(ctx, 0)
	var lim *ratelimit.Limited
	if !errors.As(err, &lim) {
		t.Fatalf("impatient call: got %v, want Limited", err)
	}
	if p := lim.Problem("too many calls"); p.Code != "rate_limited" || p.RetryAfter <= 0 {
		t.Errorf("problem: got %+v", p)
	}
	// The refusal took nothing: another replica's patient caller gets the cell just
	// after the second call's.
	other := ratelimit.NewShared(db).Limiter("k", ratelimit.Rate{PerSecond: 10, Burst: 1})
	if d2, err := other.Take(ctx, time.Second); err != nil || d2 <= d || d2 > d+100*time.Millisecond+10*time.Millisecond {
		t.Errorf("other replica's patient call: got %v, %v; want the next cell, about 100ms after %v", d2, err, d)
	}
}

// TestRefusalSaysWhen: a budget of one call per 10 s refuses the second call with a
// Retry-After of about 10 s, and does not ask the database again before then.
func TestRefusalSaysWhen(t *testing.T) {
	r := newReplicas(t, 1)[0]
	l := r.limiters.Limiter("keys-endpoint:192.0.2.1", ratelimit.Rate{PerSecond: 0.1, Burst: 1})
	ctx := context.Background()
	if _, err := l.Take(ctx, 0); err != nil {
		t.Fatalf("first call: %v", err)
	}
	for i := range 100 {
		_, err := l.Take(ctx, 0)
		var lim *ratelimit.Limited
		if !errors.As(err, &lim) || lim.RetryAfter < 9*time.Second || lim.RetryAfter > 10*time.Second {
			t.Fatalf("call %d: got %v, want a refusal with Retry-After of about 10s", i+2, err)
		}
	}
	if n := r.statements.n.Load(); n > 2 {
		t.Errorf("%d statements for 1 grant and 100 refusals, want at most 2", n)
	}
}

func TestLocal(t *testing.T) {
	l := ratelimit.NewLocal("k", ratelimit.Rate{PerSecond: 1, Burst: 2})
	ctx := context.Background()
	for i := range 2 {
		if _, err := l.Take(ctx, 0); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	if _, err := l.Take(ctx, 0); err == nil {
		t.Fatal("third call: want refusal")
	}
	if d, err := l.Take(ctx, 2*time.Second); err != nil || d <= 0 {
		t.Fatalf("patient call: got %v, %v; want a wait", d, err)
	}
}
