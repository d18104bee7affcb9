package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// The tests below run the limiter in a synctest bubble: its clock is fake and moves
// only when every goroutine waits, so the figures they check are exact, however slow
// or loaded the machine. The database is gcra, the lease statement's arithmetic (see
// infra/migrations) on the bubble's clock, with a round trip; the tests against
// PostgreSQL check that the real one keeps the same properties.

// gcra is a shared budget in memory, leased as rate_lease() does.
type gcra struct {
	rtt time.Duration

	mu     sync.Mutex
	tat    time.Time // zero: never used (-infinity)
	leases int
}

func (g *gcra) LeaseRate(_ context.Context, _ string, interval, tolerance, horizon time.Duration, want int) (store.RateLease, error) {
	time.Sleep(g.rtt / 2)
	g.mu.Lock()
	g.leases++
	now := time.Now()
	base := now
	if g.tat.After(now) {
		base = g.tat
	}
	res := store.RateLease{First: base.Add(-tolerance), Now: now}
	if room := now.Sub(res.First) + horizon; room >= 0 && want > 0 {
		res.Granted = min(want, int(room/interval)+1)
		g.tat = base.Add(time.Duration(res.Granted) * interval)
	}
	g.mu.Unlock()
	time.Sleep(g.rtt / 2)
	return res, nil
}

// simWindows counts the calls made in each window of length w starting from start,
// start+step, ... while the window ends by end.
func simWindows(calls []time.Time, start, end time.Time, w time.Duration) (lo, hi int) {
	counts := windowCounts(calls, start, end, w, 100*time.Millisecond)
	lo, hi = math.MaxInt, 0
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	return lo, hi
}

func countIn(times []time.Time, from, to time.Time) int {
	n := 0
	for _, g := range times {
		if !g.Before(from) && g.Before(to) {
			n++
		}
	}
	return n
}

// windowCounts slides a window of length w over the sorted times, in steps of step,
// from start until the window's end passes end, and returns each window's count.
func windowCounts(times []time.Time, start, end time.Time, w, step time.Duration) []int {
	slices.SortFunc(times, time.Time.Compare)
	var out []int
	for from := start; !from.Add(w).After(end); from = from.Add(step) {
		lo, _ := slices.BinarySearchFunc(times, from, time.Time.Compare)
		hi, _ := slices.BinarySearchFunc(times, from.Add(w), time.Time.Compare)
		out = append(out, hi-lo)
	}
	return out
}

// TestSimulatedBudget: two and three replicas take from a budget of 500/s (burst 500),
// each asked for 2 000 calls a second, for 22 s; the last replica stops after 11 s. The package documentation's bounds hold exactly: any 10 s
// window holds at most B + r·(T + H) calls, and from the second second on, with the
// burst spent, at most r·(10 s + 0.35 s) and at least 95 % of r·T (the budget is not
// left idle); once the last replica stops the others get 95 % of the budget; and
// there is a statement per lease, far fewer than one per call.
func TestSimulatedBudget(t *testing.T) {
	const (
		rate   = 500.0
		window = 10 * time.Second
		run    = 22 * time.Second
	)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db := &gcra{rtt: 2 * time.Millisecond}
				start := time.Now()
				half, end := start.Add(run/2), start.Add(run)
				grants := make([][]time.Time, n)
				var wg sync.WaitGroup
				var mu sync.Mutex
				for i := range n {
					l := newLeased(db, CacheKey, Rate{PerSecond: rate, Burst: int(rate)})
					stop := end
					if i == n-1 {
						stop = half
					}
					call := func() {
						d, err := l.Take(context.Background(), 0)
						var lim *Limited
						switch {
						case err == nil && d == 0:
							mu.Lock()
							grants[i] = append(grants[i], time.Now())
							mu.Unlock()
						case err == nil:
							t.Errorf("maxWait 0 granted a wait of %v", d)
						case !errors.As(err, &lim) || lim.RetryAfter <= 0:
							t.Errorf("Take: %v, want a grant or a refusal with a delay", err)
						}
					}
					// Requests arrive at 2 000/s whether or not the earlier ones were
					// answered, as they reach a replica in production.
					wg.Go(func() {
						for time.Now().Before(stop) {
							wg.Go(call)
							time.Sleep(500 * time.Microsecond)
						}
					})
				}
				wg.Wait()
				settle()

				all := slices.Concat(grants...)
				l := newLeased(db, CacheKey, Rate{PerSecond: rate, Burst: int(rate)})
				bound := int(float64(rate) + rate*(window+l.hold).Seconds())
				if _, hi := simWindows(all, start, end, window); hi > bound {
					t.Errorf("a 10 s window held %d calls, the bound is B + r·(T+H) = %d", hi, bound)
				}
				lo, hi := simWindows(all, start.Add(time.Second), end, window)
				if steady := int(rate * (window + 350*time.Millisecond).Seconds()); hi > steady {
					t.Errorf("from the second second on a 10 s window held %d calls, want at most r·(T + 0.35 s) = %d", hi, steady)
				}
				if want := int(0.95 * rate * window.Seconds()); lo < want {
					t.Errorf("from the second second on a 10 s window held %d calls, want at least %d: the budget was left idle", lo, want)
				}
				busy := 0
				for _, g := range grants[:n-1] {
					busy += countIn(g, half.Add(time.Second), end)
				}
				if share := float64(busy) / (rate * (run/2 - time.Second).Seconds()); share < 0.95 {
					t.Errorf("after replica %d stopped the others had %.0f %% of the budget, want at least 95 %%", n, 100*share)
				}
				perThousand := 1000 * float64(db.leases) / float64(len(all))
				if perThousand > 100 {
					t.Errorf("%d statements for %d grants (%.0f per 1 000), want leases, not calls", db.leases, len(all), perThousand)
				}
				t.Logf("%d grants, 10 s windows %d..%d from the second second on (budget %.0f), %d statements (%.1f per 1 000 grants)",
					len(all), lo, hi, rate*window.Seconds(), db.leases, perThousand)
			})
		})
	}
}

// TestSimulatedPatientBudget: three replicas with thirty callers each take from a
// budget of 40/s (burst 40), each willing to wait up to 2 s, making its call when its
// wait is over and retrying when told after a refusal. No wait exceeds the patience,
// and from the second second on every 10 s window holds 400 calls ± 5 %.
func TestSimulatedPatientBudget(t *testing.T) {
	const (
		rate     = 40.0
		window   = 10 * time.Second
		patience = 2 * time.Second
	)
	synctest.Test(t, func(t *testing.T) {
		db := &gcra{rtt: 2 * time.Millisecond}
		start := time.Now()
		end := start.Add(16 * time.Second)
		var mu sync.Mutex
		var calls []time.Time
		var wg sync.WaitGroup
		for range 3 {
			l := newLeased(db, "nql:eu", Rate{PerSecond: rate, Burst: int(rate)})
			for range 30 {
				wg.Go(func() {
					for time.Now().Before(end) {
						d, err := l.Take(context.Background(), patience)
						var lim *Limited
						switch {
						case errors.As(err, &lim):
							time.Sleep(lim.RetryAfter)
							continue
						case err != nil:
							t.Error(err)
							return
						case d > patience:
							t.Errorf("granted a wait of %v, beyond the caller's %v", d, patience)
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
		settle()
		lo, hi := simWindows(calls, start.Add(time.Second), end, window)
		if want := rate * window.Seconds(); float64(lo) < 0.95*want || float64(hi) > 1.05*want {
			t.Errorf("10 s windows from the second second on held %d..%d calls, want %.0f ± 5 %%", lo, hi, want)
		}
		t.Logf("%d calls, 10 s windows %d..%d, %d statements", len(calls), lo, hi, db.leases)
	})
}

// stalled is a database that answers no lease before the caller gives up, as a
// starved one may.
type stalled struct {
	mu    sync.Mutex
	calls int
}

func (s *stalled) LeaseRate(ctx context.Context, key string, _, _, _ time.Duration, _ int) (store.RateLease, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	<-ctx.Done()
	return store.RateLease{}, fmt.Errorf("rate limit %s: lease: %w", key, ctx.Err())
}

// TestLeaseTimeout: when the database does not answer a lease, the callers waiting
// for it are answered with a 503 (the cache's limit cannot be checked, retry in a
// second) once the lease times out, not left waiting nor let through; the next
// callers get the same answer without a lease of their own until the pause is over.
func TestLeaseTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &stalled{}
		l := newLeased(db, CacheKey, Rate{PerSecond: 500, Burst: 500})
		start := time.Now()
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				err := TakeCacheRead(context.Background(), l, "key_1")
				var p *problem.Error
				if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable || p.RetryAfter <= 0 || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want a 503 with a retry delay, caused by the lease's timeout", err)
				}
				if waited := time.Since(start); waited > leaseTimeout {
					t.Errorf("answered after %v, the lease times out after %v", waited, leaseTimeout)
				}
			})
		}
		wg.Wait()
		if db.calls != 1 {
			t.Errorf("%d leases for 20 callers, want the one they all waited for", db.calls)
		}
		if err := TakeCacheRead(context.Background(), l, "key_1"); err == nil || db.calls != 1 {
			t.Errorf("during the pause after the failure: got %v and %d leases, want the same 503 without a lease", err, db.calls)
		}
	})
}

// slowDB is one replica's connection to a shared gcra budget, with round trips of
// 2 to 300 ms at random (seeded): a starved database. It counts the leases that
// landed, for the callers to tell how many they waited for.
type slowDB struct {
	budget *gcra

	mu     sync.Mutex
	rnd    *rand.Rand
	landed int
}

func newSlowDB(budget *gcra, seed uint64) *slowDB {
	return &slowDB{budget: budget, rnd: rand.New(rand.NewPCG(seed, 2))}
}

func (s *slowDB) LeaseRate(ctx context.Context, key string, interval, tolerance, horizon time.Duration, want int) (store.RateLease, error) {
	s.mu.Lock()
	rtt := 2*time.Millisecond + time.Duration(s.rnd.Float64()*float64(298*time.Millisecond))
	s.mu.Unlock()
	time.Sleep(rtt / 2)
	res, err := s.budget.LeaseRate(ctx, key, interval, tolerance, horizon, want)
	time.Sleep(rtt / 2)
	s.mu.Lock()
	s.landed++
	s.mu.Unlock()
	return res, err
}

func (s *slowDB) landings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.landed
}

// withinBudget checks that no prefix of the sorted grant times holds more than the
// burst and the rate for the time since start.
func withinBudget(t *testing.T, grants []time.Time, start time.Time, r Rate) {
	t.Helper()
	slices.SortFunc(grants, time.Time.Compare)
	for i, g := range grants {
		if allowed := float64(r.Burst) + r.PerSecond*g.Sub(start).Seconds(); float64(i+1) > allowed+1e-9 {
			t.Errorf("%d grants by %v, the budget allows %.0f", i+1, g.Sub(start), allowed)
			return
		}
	}
}

// TestSlowDatabaseImpatient: two replicas are asked for 2 000 calls a second each of
// a 500/s budget while every lease takes up to 300 ms. A caller that will not wait is
// answered after at most two of its replica's leases, whoever sent them: it is not
// queued behind every next lease while their cells go to others. The calls granted
// stay within the budget.
func TestSlowDatabaseImpatient(t *testing.T) {
	r := Rate{PerSecond: 500, Burst: 500}
	synctest.Test(t, func(t *testing.T) {
		budget := &gcra{}
		start := time.Now()
		end := start.Add(5 * time.Second)
		var mu sync.Mutex
		var grants []time.Time
		most, refused := 0, 0
		var wg sync.WaitGroup
		for i := range 2 {
			db := newSlowDB(budget, uint64(i))
			l := newLeased(db, CacheKey, r)
			wg.Go(func() {
				for time.Now().Before(end) {
					wg.Go(func() {
						before := db.landings()
						_, err := l.Take(context.Background(), 0)
						seen := db.landings() - before
						mu.Lock()
						defer mu.Unlock()
						var lim *Limited
						switch {
						case err == nil:
							grants = append(grants, time.Now())
						case errors.As(err, &lim):
							refused++
						default:
							t.Errorf("Take: %v", err)
						}
						most = max(most, seen)
					})
					time.Sleep(500 * time.Microsecond)
				}
			})
		}
		wg.Wait()
		settle()
		if most > 2 {
			t.Errorf("a call with maxWait 0 was answered after %d of its replica's leases landed, want two at most", most)
		}
		withinBudget(t, grants, start, r)
		t.Logf("%d grants, %d refused, %d leases, at most %d landed during a call", len(grants), refused, budget.leases, most)
	})
}

// TestSlowDatabasePatient: on three replicas, sixty callers each, all at once, ask
// a budget of 40/s (no burst) while every lease takes up to 300 ms; each will wait up
// to 15 s, and the 180 calls need 4.5 s of the budget. Every caller is granted within
// its patience (none is told to retry: it waits for the leases and the limiter's
// next chance instead), and the calls stay within the budget.
func TestSlowDatabasePatient(t *testing.T) {
	const patience = 15 * time.Second
	r := Rate{PerSecond: 40, Burst: 1}
	synctest.Test(t, func(t *testing.T) {
		budget := &gcra{}
		start := time.Now()
		var mu sync.Mutex
		var calls []time.Time
		var wg sync.WaitGroup
		for i := range 3 {
			l := newLeased(newSlowDB(budget, uint64(i)), "nql:eu", r)
			for range 60 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), patience)
					defer cancel()
					asked := time.Now()
					d, err := l.Take(ctx, patience)
					if err != nil {
						t.Errorf("a patient caller got %v", err)
						return
					}
					if made := time.Now().Add(d); made.Sub(asked) > patience {
						t.Errorf("a call made %v after it asked, beyond its patience of %v", made.Sub(asked), patience)
					}
					time.Sleep(d)
					mu.Lock()
					calls = append(calls, time.Now())
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		settle()
		withinBudget(t, calls, start, r)
		slices.SortFunc(calls, time.Time.Compare)
		t.Logf("%d calls, the last %v after the first ask, %d leases", len(calls), calls[len(calls)-1].Sub(start), budget.leases)
	})
}

// TestSlowDatabaseBurst: 300 callers that will not wait arrive at once at a budget of
// 100 000/s while every lease takes up to 300 ms. None is refused: a budget that is
// not spent never answers 429. The leases are sized for the callers waiting for
// them, so a burst is not served a cell or two at a time.
func TestSlowDatabaseBurst(t *testing.T) {
	r := Rate{PerSecond: 100000, Burst: 100000}
	synctest.Test(t, func(t *testing.T) {
		budget := &gcra{}
		l := newLeased(newSlowDB(budget, 7), CacheKey, r)
		var wg sync.WaitGroup
		for range 300 {
			wg.Go(func() {
				if err := TakeCacheRead(WithCaller(context.Background(), "key_1"), l, "key_1"); err != nil {
					t.Errorf("TakeCacheRead: %v", err)
				}
			})
		}
		wg.Wait()
		settle()
		t.Logf("%d leases for 300 callers", budget.leases)
	})
}

// settle lets the leases in flight land: a refill runs on after the caller that
// started it has its cell, and a bubble ends only when it has landed.
func settle() { time.Sleep(leaseTimeout) }

// ctxDB is gcra behind a round trip that ends early, with the context's error, when
// the caller's context does.
type ctxDB struct {
	gcra
	trip time.Duration
}

func (c *ctxDB) LeaseRate(ctx context.Context, key string, interval, tolerance, horizon time.Duration, want int) (store.RateLease, error) {
	select {
	case <-time.After(c.trip):
	case <-ctx.Done():
		c.mu.Lock()
		c.leases++
		c.mu.Unlock()
		return store.RateLease{}, fmt.Errorf("rate limit %s: lease: %w", key, ctx.Err())
	}
	return c.gcra.LeaseRate(ctx, key, interval, tolerance, horizon, want)
}

// TestDeadlinePassesWhileWaiting: a caller whose context ends while its lease is on
// its way to a slow database is answered with its context's error, and sends no
// further lease: a lease that fails with the caller's own deadline is no failure of
// the store, but the caller has given up.
func TestDeadlinePassesWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &ctxDB{trip: 600 * time.Millisecond}
		l := newLeased(db, "nql:eu", Rate{PerSecond: 100, Burst: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		_, err := l.Take(ctx, 10*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the context's deadline", err)
		}
		if db.leases != 1 {
			t.Errorf("%d leases for one caller that gave up, want its one", db.leases)
		}
		// The store did not fail: the next caller leases and is served.
		if _, err := l.Take(context.Background(), time.Second); err != nil {
			t.Errorf("next caller: %v", err)
		}
	})
}
