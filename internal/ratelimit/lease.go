package ratelimit

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
)

// Leaser leases slices of shared budgets (store.DB).
type Leaser interface {
	LeaseRate(ctx context.Context, key string, interval, tolerance, horizon time.Duration, want int) (store.RateLease, error)
}

const (
	// period is how much of its demand a replica leases at a time, and how often it
	// asks again while the budget is short.
	period = 100 * time.Millisecond
	// maxHorizon bounds how far ahead a patient caller reserves the budget.
	maxHorizon = 10 * time.Second
	// failureBackoff is how long a failed lease answers every caller with its error
	// before the next one is tried, so an outage costs 10 statements per second;
	// leaseTimeout bounds a lease, which the callers behind it wait for.
	failureBackoff = 100 * time.Millisecond
	leaseTimeout   = 2 * time.Second
)

// leased is one replica's share of one deployment-wide limit: cells leased from the
// database, used locally. The package documentation explains the scheme.
type leased struct {
	db     Leaser
	key    string
	r      Rate
	period time.Duration
	hold   time.Duration // how long a cell stays usable once it conforms
	// interval is the time between cells, tolerance the burst allowance, as in GCRA.
	interval, tolerance time.Duration
	maxWant             int // one period of the whole budget

	mu       sync.Mutex
	cells    []run         // leased cells not yet used, in order of their time
	inflight chan struct{} // closed when the lease in flight lands
	// nextAsk: while short, no lease before it unless the caller is more patient than
	// the last lease was (asked). dbNext: the database's next cell conforms no sooner.
	nextAsk, dbNext time.Time
	asked           time.Duration
	leasedAt        time.Time // when the last lease landed
	failed          error
	failedUntil     time.Time
	short           bool // demand outran the budget at the last lease
	lastWant        int
	demand, supply  meter // calls asked of this replica; cells it obtained
	callers         map[string]*caller
	fair            fairShares
	lastUse         time.Time
	waiting         int           // callers waiting for a lease in flight or their own
	rtt             time.Duration // a lease's round trip, smoothed
}

// run is cells leased together: n cells, the first usable at first, then one per step.
type run struct {
	first, recv time.Time
	step        time.Duration
	n           int
}

func newLeased(db Leaser, key string, r Rate) *leased {
	interval := time.Duration(float64(time.Second) / r.PerSecond)
	return &leased{
		db: db, key: key, r: r, period: period, hold: 2 * period,
		interval: interval, tolerance: time.Duration(max(r.Burst-1, 0)) * interval,
		maxWant: max(1, int(math.Ceil(r.PerSecond*period.Seconds()))),
		callers: map[string]*caller{}, fair: fairShares{level: math.Inf(1)},
	}
}

func (l *leased) Take(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	maxWait = max(maxWait, 0)
	l.mu.Lock()
	now := time.Now()
	l.lastUse = now
	c := l.callerOf(CallerFrom(ctx), now)
	l.demand.add(now, 1)
	c.demand.add(now, 1)
	// The caller's patience ends at deadline, fixed now: time spent waiting for leases
	// counts against it. Within it the caller waits for leases and for the limiter's
	// next chance; past it (at once for a caller that will not wait) it waits for two
	// leases at most, or a slow database would keep it behind lease after lease whose
	// cells other callers take.
	deadline := now.Add(maxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for leases := 0; ; {
		if err := ctx.Err(); err != nil {
			// A caller that gave up (its lease failed for it alone, or its deadline
			// passed while it waited) is answered; it does not lease again.
			l.mu.Unlock()
			return 0, err
		}
		l.expire(now)
		// A cell conformed by now is usable by any caller; a patient one takes a later
		// cell too, up to its deadline.
		until := now
		if deadline.After(until) {
			until = deadline
		}
		patience := until.Sub(now)
		unfair := false
		if at, ok := l.head(); ok && !at.After(until) {
			if l.admits(c, now, until) {
				l.pop()
				c.granted.add(now, 1)
				if l.lowWater(now) {
					// Refill before the cells run out, so the callers after this one do
					// not wait for the database; this caller has its cell and does not
					// wait for the refill either.
					done := l.begin()
					go l.lease(context.WithoutCancel(ctx), 0, done)
				}
				l.mu.Unlock()
				return max(at.Sub(now), 0), nil
			}
			unfair = true // the cells left are kept for others; a lease may bring more
		}
		// Past its patience a caller waits for two leases at most, unless the budget
		// was not short at the last lease: then its cell went to a caller that came
		// after the lease landed, and the next lease (sized for the callers waiting)
		// brings it one; a 429 says the budget is spent, not that a race was lost.
		exhausted := leases >= 2 && !now.Before(deadline) && l.short
		if ch := l.inflight; ch != nil && !exhausted {
			l.waiting++
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				l.mu.Lock()
				l.waiting--
				l.mu.Unlock()
				return 0, ctx.Err()
			}
			l.mu.Lock()
			l.waiting--
			leases++
			now = time.Now()
			continue
		}
		if now.Before(l.failedUntil) {
			err := l.failed
			l.mu.Unlock()
			return 0, err
		}
		if exhausted || !l.mayAsk(now, patience, l.favoured(c, now)) {
			after := l.retryAfter(now)
			if unfair {
				after = l.period // shares are revised at the next lease
			}
			if exhausted || !now.Add(after).Before(deadline) {
				l.mu.Unlock()
				return 0, l.limited(after)
			}
			// A patient caller waits for the limiter's next chance within its patience
			// rather than being told to retry.
			l.mu.Unlock()
			t := time.NewTimer(after)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			}
			l.mu.Lock()
			now = time.Now()
			continue
		}
		leases++
		done := l.begin()
		l.waiting++
		l.mu.Unlock()
		l.lease(ctx, min(patience, maxHorizon), done)
		l.mu.Lock()
		l.waiting--
		now = time.Now()
	}
}

func (l *leased) limited(after time.Duration) *Limited {
	return &Limited{Key: l.key, RetryAfter: after, PerSecond: l.r.PerSecond}
}

// expire drops the cells no longer usable: a cell is usable for hold after it
// conforms or after its lease landed, whichever is later. Called with l.mu held.
func (l *leased) expire(now time.Time) {
	for len(l.cells) > 0 {
		r := &l.cells[0]
		cut := now.Add(-l.hold)
		if !r.recv.Before(cut) || !r.first.Before(cut) {
			return
		}
		gone := min(int((cut.Sub(r.first)+r.step-1)/r.step), r.n) // the cells before cut
		r.first = r.first.Add(time.Duration(gone) * r.step)
		if r.n -= gone; r.n > 0 {
			return
		}
		l.cells = l.cells[1:]
	}
}

// head is the time of the next leased cell. Called with l.mu held.
func (l *leased) head() (time.Time, bool) {
	if len(l.cells) == 0 {
		return time.Time{}, false
	}
	return l.cells[0].first, true
}

// pop uses the next leased cell. Called with l.mu held.
func (l *leased) pop() {
	r := &l.cells[0]
	r.first = r.first.Add(r.step)
	if r.n--; r.n == 0 {
		l.cells = l.cells[1:]
	}
}

// usable counts the leased cells usable by until. Called with l.mu held.
func (l *leased) usable(until time.Time) int {
	n := 0
	for _, r := range l.cells {
		if r.first.After(until) {
			break
		}
		n += min(int(until.Sub(r.first)/r.step)+1, r.n)
	}
	return n
}

// lowWater says a lease should start now, before the cells run out: demand fits the
// budget, what is left would last no longer than a quarter of a period and two
// round trips of a lease (a lease waits for a connection behind the queries of a
// busy replica), and nothing stands in the way. Called with l.mu held.
func (l *leased) lowWater(now time.Time) bool {
	if l.inflight != nil || l.short || l.lastWant < 4 || now.Before(l.nextAsk) || now.Before(l.failedUntil) {
		return false
	}
	left := max(l.lastWant/4, int(math.Ceil(l.demand.rate(now)*(2*l.rtt).Seconds())))
	return l.usable(now.Add(l.hold)) <= left
}

// mayAsk says whether a lease could bring a caller willing to wait maxWait a cell.
// While the budget is short, leases are a period apart, except for a caller more
// patient than the last lease was, or one favoured by the fair share (a quarter of a
// period apart then). Called with l.mu held.
func (l *leased) mayAsk(now time.Time, maxWait time.Duration, favoured bool) bool {
	switch {
	case now.Add(maxWait).Before(l.dbNext):
		return false // the database has no cell that soon for anyone
	case !now.Before(l.nextAsk), maxWait > l.asked:
		return true
	}
	return favoured && now.Sub(l.leasedAt) >= l.period/4
}

// retryAfter is when a refused caller may find a cell: the next leased one, or the
// next lease. Called with l.mu held.
func (l *leased) retryAfter(now time.Time) time.Duration {
	next := l.nextAsk
	if l.dbNext.After(next) {
		next = l.dbNext
	}
	if at, ok := l.head(); ok && at.Before(next) {
		next = at
	}
	return max(next.Sub(now), time.Millisecond)
}

// begin marks a lease in flight. Called with l.mu held.
func (l *leased) begin() chan struct{} {
	l.inflight = make(chan struct{})
	return l.inflight
}

// lease asks the database for about one period of this replica's demand, granted by
// now + horizon, and files the cells. Called without l.mu; done is the lease's mark.
func (l *leased) lease(ctx context.Context, horizon time.Duration, done chan struct{}) {
	l.mu.Lock()
	// A period of demand, and at least a cell for each caller waiting: the demand a
	// burst of callers brings is not measured yet when they all wait for one lease.
	// While the budget has room, also the demand of the next lease's round trip, so
	// the cells last until it lands; not beyond hold, when they would expire unused.
	sent := time.Now()
	demand := l.demand.rate(sent)
	want := max(int(math.Ceil(demand*l.period.Seconds())), l.waiting)
	clipped := want > l.maxWant
	want = min(max(want, 1), l.maxWant)
	if !l.short && !clipped {
		want = max(want, min(int(math.Ceil(demand*(l.period+2*l.rtt).Seconds())), int(math.Ceil(demand*l.hold.Seconds()))))
	}
	l.mu.Unlock()

	leaseCtx, cancel := context.WithTimeout(ctx, leaseTimeout)
	res, err := l.db.LeaseRate(leaseCtx, l.key, l.interval, l.tolerance, horizon, want)
	cancel()
	recv := time.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	defer close(done)
	l.inflight = nil
	if err != nil {
		if ctx.Err() == nil { // one caller giving up is not a failure of the store
			l.failed, l.failedUntil = err, recv.Add(failureBackoff)
		}
		return
	}
	// Database times to local ones, counted from the answer's arrival: a cell is never
	// used before its time, only a round trip after it at worst.
	local := func(t time.Time) time.Time { return recv.Add(t.Sub(res.Now)) }
	if res.Granted > 0 {
		l.cells = append(l.cells, run{first: local(res.First), recv: recv, step: l.interval, n: res.Granted})
		l.supply.add(recv, float64(res.Granted))
	}
	l.dbNext = local(res.First.Add(time.Duration(res.Granted) * l.interval))
	l.asked, l.lastWant, l.leasedAt = horizon, want, recv
	// The round trip, smoothed: how long the next lease will take, queue included.
	if trip := recv.Sub(sent); l.rtt == 0 {
		l.rtt = trip
	} else {
		l.rtt += (trip - l.rtt) / 4
	}
	l.short = clipped || res.Granted < want
	l.nextAsk = recv
	if res.Granted < want {
		// The budget is spent: ask again in about a period, at a random point so that
		// replicas do not fall into step and one always outrun the other.
		l.nextAsk = recv.Add(time.Duration(float64(l.period) * (0.5 + rand.Float64())))
	}
	l.reviseShares(recv)
}
