package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestBudgetAcrossReplicas: two and three replicas (each its own pool on one
// database) take from the cache's budget of 500/s (burst 500) as fast as they can.
// What is checked holds however slow the machine is: the database, in its own clock,
// never granted more cells than the budget allows for the time that passed, nor the
// same cell twice; no replica granted more calls than it leased cells; once the last
// replica stops it leases nothing more and the others eventually take more than their
// share (its share was given back); and the database saw a statement per lease, far
// fewer than the grants. A lease that times out on a starved database reaches the
// caller as the store's error (a 503), never as a grant. How many grants a second the
// limiter sustains is BenchmarkTake's business.
func TestBudgetAcrossReplicas(t *testing.T) {
	t.Parallel()
	const (
		key  = "cache"
		rate = 500.0
	)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			t.Parallel()
			replicas := newReplicas(t, n)
			ctx := context.Background()
			tallies := make([]*tally, n)
			loads := make([]*load, n)
			for i, r := range replicas {
				tallies[i] = &tally{}
				l := r.limiters.Limiter(key, ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
				loads[i] = hammer(t, ctx, l, 2, tallies[i])
			}
			granted := func() (total int64, each []int64) {
				for _, tl := range tallies {
					each = append(each, tl.n.Load())
					total += tl.n.Load()
				}
				return total, each
			}
			// The burst spent and as much again, every replica served.
			eventually(t, "every replica granted calls, the burst spent twice over", func() (bool, string) {
				total, each := granted()
				return total >= 2*rate && !slices.Contains(each, 0), fmt.Sprintf("grants %v", each)
			})

			// The last replica stops: from its last lease on, the others share the whole
			// budget. Measured in the database's clock, over a second of their leases.
			loads[n-1].Stop()
			idle, _ := replicas[n-1].leases.snapshot()
			var stopAt time.Time
			for _, rec := range idle {
				stopAt = later(stopAt, rec.Now)
			}
			share := float64(n-1) / float64(n) * rate // per second, had the last one kept its share
			var got int
			eventually(t, "the replicas still running take the stopped one's share", func() (bool, string) {
				var recs []leaseRecord
				for _, r := range replicas[:n-1] {
					rs, _ := r.leases.snapshot()
					recs = append(recs, rs...)
				}
				var last time.Time
				for _, rec := range recs {
					last = later(last, rec.Now)
				}
				from := last.Add(-time.Second)
				if from.Before(stopAt) {
					return false, "less than a second of leases since the stop"
				}
				got = 0
				for _, rec := range recs {
					if rec.Now.After(from) {
						got += rec.Granted
					}
				}
				return float64(got) > 1.1*share, fmt.Sprintf("%d cells in the last second, their share was %.0f", got, share)
			})
			for _, ld := range loads {
				ld.Stop()
			}

			after, _ := replicas[n-1].leases.snapshot()
			if len(after) != len(idle) {
				t.Errorf("the stopped replica took %d leases while idle", len(after)-len(idle))
			}
			perReplica := checkLeases(t, replicas, key)
			var grants, statements, leases, failed int64
			refused := 0
			for i, tl := range tallies {
				if g := tl.n.Load(); g > int64(perReplica[i]) {
					t.Errorf("replica %d granted %d calls with %d cells leased", i, g, perReplica[i])
				}
				grants += tl.n.Load()
				refused += tl.refusals()
				statements += replicas[i].statements.n.Load()
				recs, f := replicas[i].leases.snapshot()
				leases += int64(len(recs) + f)
				failed += int64(f)
			}
			if statements != leases {
				t.Errorf("%d statements for %d leases, want one per lease and none per call", statements, leases)
			}
			if 5*statements > grants {
				t.Errorf("%d statements for %d grants, want leases of many cells, not a statement per call", statements, grants)
			}
			t.Logf("%d grants, %d refused, %d calls answered with a failed lease (%d failed leases), %d statements (%.1f per 1 000 grants); after the stop the others leased %d cells in a second (share %.0f)",
				grants, refused, failedCalls(tallies), failed, statements, 1000*float64(statements)/float64(grants), got, share)
		})
	}
}

// TestPatientBudgetAcrossReplicas: three replicas with thirty callers each take
// from an instance's NQL budget (40/s, burst 40) the way the Nexthink client does:
// each is willing to wait up to 2 s, makes its call when its wait is over, and after a
// refusal retries when told. No wait exceeds the caller's patience, the database
// reserved no cell beyond the lease's horizon nor more than the budget allows for
// the time that passed, and no replica granted more calls than it leased cells.
func TestPatientBudgetAcrossReplicas(t *testing.T) {
	t.Parallel()
	const (
		key      = "nql:eu"
		rate     = 40.0
		patience = 2 * time.Second
	)
	replicas := newReplicas(t, 3)
	ctx := context.Background()
	stop := make(chan struct{})
	pause := func(d time.Duration) bool { // false once stopped
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			return true
		case <-stop:
			return false
		}
	}
	tallies := make([]*tally, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		tl := &tally{}
		tallies[i] = tl
		l := r.limiters.Limiter(key, ratelimit.Rate{PerSecond: rate, Burst: int(rate)})
		for range 30 {
			wg.Go(func() {
				for {
					d, err := l.Take(ctx, patience)
					var lim *ratelimit.Limited
					switch {
					case errors.As(err, &lim):
						if lim.RetryAfter <= 0 {
							t.Errorf("refusal without a retry delay: %v", lim)
						}
						tl.refuse()
						d = lim.RetryAfter // as the client's retry would
					case err != nil:
						if !isLeaseFailure(err) {
							t.Errorf("Take: %v, want a grant, a refusal or a failed lease", err)
							return
						}
						tl.failures.Add(1)
						d = time.Second // the 503's Retry-After
					case d > patience:
						t.Errorf("granted a wait of %v, beyond the caller's %v", d, patience)
					default:
						tl.n.Add(1) // granted: the call is made when d is over
					}
					if !pause(d) {
						return
					}
				}
			})
		}
	}
	eventually(t, "the callers made the burst's calls and three seconds of the budget", func() (bool, string) {
		var each []int64
		total := int64(0)
		for _, tl := range tallies {
			each = append(each, tl.n.Load())
			total += tl.n.Load()
		}
		return total >= 4*rate, fmt.Sprintf("grants %v", each)
	})
	close(stop)
	wg.Wait()

	perReplica := checkLeases(t, replicas, key)
	for i, tl := range tallies {
		if g := tl.n.Load(); g > int64(perReplica[i]) {
			t.Errorf("replica %d granted %d calls with %d cells leased", i, g, perReplica[i])
		}
		recs, _ := replicas[i].leases.snapshot()
		for _, rec := range recs {
			if rec.horizon > patience {
				t.Errorf("replica %d leased %v ahead, its callers wait at most %v", i, rec.horizon, patience)
			}
		}
	}
	var statements int64
	for _, r := range replicas {
		statements += r.statements.n.Load()
	}
	t.Logf("grants per replica %v, cells leased %v, calls answered with a failed lease %d, %d statements",
		[]int64{tallies[0].n.Load(), tallies[1].n.Load(), tallies[2].n.Load()}, perReplica, failedCalls(tallies), statements)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func failedCalls(tallies []*tally) int64 {
	n := int64(0)
	for _, tl := range tallies {
		n += tl.failures.Load()
	}
	return n
}

// TestWaitWithinPatience: a caller willing to wait gets a cell ahead of time and the
// wait until it; one that is not is refused, and its refusal reserves nothing. With
// one call per 5 s, each figure is checked against the time that passed, however
// long that was.
func TestWaitWithinPatience(t *testing.T) {
	const interval = 5 * time.Second
	db := store.New(testenv.Postgres(t))
	rate := ratelimit.Rate{PerSecond: float64(time.Second) / float64(interval), Burst: 1}
	l := ratelimit.NewShared(db).Limiter("k", rate)
	ctx := context.Background()
	start := time.Now()
	if d, err := l.Take(ctx, 0); err != nil || d != 0 {
		t.Fatalf("first call: got %v, %v; want immediate", d, err)
	}
	d, err := l.Take(ctx, 2*interval)
	made := time.Now().Add(d) // when the caller makes its call
	if err != nil || d > interval || made.Sub(start) < interval-time.Millisecond {
		t.Fatalf("second call with patience: got %v, %v, the call made %v after the first; want a wait of at most %v, the call an interval after the first",
			d, err, made.Sub(start), interval)
	}
	_, err = l.Take(ctx, 0)
	answered := time.Now()
	var lim *ratelimit.Limited
	if !errors.As(err, &lim) {
		// Only a machine stalled for an interval would have a cell for it.
		if time.Since(start) < 2*interval {
			t.Fatalf("impatient call: got %v, want Limited", err)
		}
		t.Skipf("the machine stalled for %v: the impatient call found a cell", time.Since(start))
	}
	if p := lim.Problem("too many calls"); p.Code != "rate_limited" || p.RetryAfter <= 0 {
		t.Errorf("problem: got %+v", p)
	}
	// Its next cell is the one after the second call's: two intervals after the first.
	if retry := answered.Add(lim.RetryAfter); retry.Sub(start) < 2*interval-time.Millisecond {
		t.Errorf("impatient call told to retry %v after the first call, want %v at least", retry.Sub(start), 2*interval)
	}
	// The refusal took nothing: another replica's patient caller gets the cell just
	// after the second call's (had the refusal taken it, the next would be beyond its
	// patience).
	other := ratelimit.NewShared(db).Limiter("k", rate)
	d2, err := other.Take(ctx, 2*interval)
	if made2 := time.Now().Add(d2); err != nil || d2 > 2*interval || made2.Sub(start) < 2*interval-time.Millisecond {
		t.Errorf("other replica's patient call: got %v, %v, the call made %v after the first; want the next cell, two intervals after the first", d2, err, made2.Sub(start))
	}
}

// TestRefusalSaysWhen: a budget of one call per 10 s refuses the next calls with a
// Retry-After that points at the first call's time + 10 s, and does not ask the
// database again before then.
func TestRefusalSaysWhen(t *testing.T) {
	const interval = 10 * time.Second
	r := newReplicas(t, 1)[0]
	l := r.limiters.Limiter("keys-endpoint:192.0.2.1", ratelimit.Rate{PerSecond: 0.1, Burst: 1})
	ctx := context.Background()
	before := time.Now()
	if _, err := l.Take(ctx, 0); err != nil {
		t.Fatalf("first call: %v", err)
	}
	after := time.Now()
	for i := range 100 {
		asked := time.Now()
		_, err := l.Take(ctx, 0)
		answered := time.Now()
		var lim *ratelimit.Limited
		if !errors.As(err, &lim) {
			if answered.Sub(before) > interval {
				t.Skipf("the machine stalled for %v: call %d found a new cell", answered.Sub(before), i+2)
			}
			t.Fatalf("call %d: got %v, want a refusal", i+2, err)
		}
		// The limiter reads the clock between asked and answered; the next cell is an
		// interval after the first call's lease, which landed between before and after.
		if asked.Add(lim.RetryAfter).After(after.Add(interval)) || answered.Add(lim.RetryAfter).Before(before.Add(interval)) {
			t.Fatalf("call %d: Retry-After %v asked %v after the first call, want one that points %v after it",
				i+2, lim.RetryAfter, asked.Sub(before), interval)
		}
	}
	if n := r.statements.n.Load(); n > 2 {
		t.Errorf("%d statements for 1 grant and 100 refusals, want at most 2", n)
	}
}

func TestLocal(t *testing.T) {
	// One call per 100 s: no machine is slow enough to earn a cell within the test.
	l := ratelimit.NewLocal("k", ratelimit.Rate{PerSecond: 0.01, Burst: 2})
	ctx := context.Background()
	for i := range 2 {
		if _, err := l.Take(ctx, 0); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	if _, err := l.Take(ctx, 0); err == nil {
		t.Fatal("third call: want refusal")
	}
	if d, err := l.Take(ctx, 200*time.Second); err != nil || d <= 0 {
		t.Fatalf("patient call: got %v, %v; want a wait", d, err)
	}
}
