package ratelimit_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// replica is what one dexbridge process has: its own pool on the shared database,
// whose statements are counted, its own limiters, and the record of the leases they
// took.
type replica struct {
	pool       *pgxpool.Pool
	limiters   *ratelimit.Shared
	statements *statementCounter
	leases     *leaseLog
}

// statementCounter counts the statements a pool sends.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {
	c.n.Add(1)
}

// leaseLog is a replica's store that records every lease it asks for: what the
// database granted, in the database's own clock, which no descheduled client skews.
type leaseLog struct {
	db *store.DB

	mu      sync.Mutex
	records []leaseRecord
	failed  int
}

type leaseRecord struct {
	key                          string
	interval, tolerance, horizon time.Duration
	want                         int
	store.RateLease
}

func (l *leaseLog) LeaseRate(ctx context.Context, key string, interval, tolerance, horizon time.Duration, want int) (store.RateLease, error) {
	res, err := l.db.LeaseRate(ctx, key, interval, tolerance, horizon, want)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
	} else {
		l.records = append(l.records, leaseRecord{key, interval, tolerance, horizon, want, res})
	}
	return res, err
}

// snapshot returns the leases recorded so far and the failed ones.
func (l *leaseLog) snapshot() ([]leaseRecord, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records), l.failed
}

// cells is how many cells the leases of key brought.
func cells(records []leaseRecord, key string) int {
	n := 0
	for _, r := range records {
		if r.key == key {
			n += r.Granted
		}
	}
	return n
}

// newReplicas opens n replicas on one fresh, migrated schema.
func newReplicas(t testing.TB, n int) []*replica {
	t.Helper()
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	var out []*replica
	for i := range n {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		counter := &statementCounter{}
		cfg.ConnConfig.Tracer = counter
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if i == 0 {
			if _, err := store.Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
		}
		counter.n.Store(0)
		log := &leaseLog{db: store.New(pool)}
		out = append(out, &replica{pool: pool, limiters: ratelimit.NewSharedOn(log), statements: counter, leases: log})
	}
	return out
}

// tally is what a load generator saw: the time of every grant, the refusals, and
// the calls answered with a failed lease; it can be read while the load runs.
type tally struct {
	n, failures atomic.Int64 // grants; calls answered with the store's error

	mu      sync.Mutex
	grants  []time.Time
	refused int
}

func (s *tally) grant(at time.Time) {
	s.n.Add(1)
	s.mu.Lock()
	s.grants = append(s.grants, at)
	s.mu.Unlock()
}

func (s *tally) refuse() {
	s.mu.Lock()
	s.refused++
	s.mu.Unlock()
}

// since counts the grants from t on.
func (s *tally) since(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return countIn(s.grants, t, time.Now().Add(time.Hour))
}

func (s *tally) refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// load is goroutines calling a limiter until stopped.
type load struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// Stop ends the load and waits for its goroutines; it may be called again.
func (l *load) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// hammer calls l.Take(ctx, 0) from workers goroutines as fast as they go until
// stopped (at the latest when the test ends), and records the grants at the time the
// call may be made. A call may be refused (*Limited with a delay) or, when a lease
// fails (a timeout on a starved database), answered with the store's error, which
// the caller turns into a 503: both are counted, anything else fails the test.
func hammer(t testing.TB, ctx context.Context, l ratelimit.Limiter, workers int, into *tally) *load {
	ld := &load{stop: make(chan struct{})}
	t.Cleanup(ld.Stop) // before the pools close
	for range workers {
		ld.wg.Go(func() {
			for {
				select {
				case <-ld.stop:
					return
				default:
				}
				d, err := l.Take(ctx, 0)
				var lim *ratelimit.Limited
				switch {
				case errors.As(err, &lim):
					if lim.RetryAfter <= 0 {
						t.Errorf("refusal without a retry delay: %v", lim)
					}
					into.refuse()
					runtime.Gosched() // hard, but leave the leases a chance to land
				case err != nil:
					if !isLeaseFailure(err) {
						t.Errorf("Take: %v, want a grant, a refusal or a failed lease", err)
						return
					}
					into.failures.Add(1)
				default:
					if d != 0 {
						t.Errorf("maxWait 0 granted a wait of %v", d)
					}
					into.grant(time.Now())
				}
			}
		})
	}
	return ld
}

// isLeaseFailure says err is the store's failure to lease (what TakeCacheRead
// answers with a 503), not a bug of the limiter.
func isLeaseFailure(err error) bool {
	var lim *ratelimit.Limited
	return err != nil && !errors.As(err, &lim) && strings.Contains(err.Error(), ": lease: ")
}

// eventually polls cond until it holds, failing the test with what cond last said
// when it has not after a minute: a condition, not a measured delay.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after a minute (%s)", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLeases checks what the database granted for key, from every replica's log:
// the cells never overlap, any two conform at least an interval apart (so any span of
// the database's clock holds at most span/interval + 1 of them), none conforms earlier
// than the burst allows before its lease nor later than the lease's horizon, and by
// each lease the deployment had at most burst + rate × (time since the first lease +
// horizon) cells. It returns the cells per replica.
func checkLeases(t *testing.T, replicas []*replica, key string) []int {
	t.Helper()
	const slack = 2 * time.Microsecond // timestamptz has microseconds
	type span struct {
		rec   leaseRecord
		first time.Time
		last  time.Time
		owner int
	}
	var spans []span
	var all []leaseRecord
	perReplica := make([]int, len(replicas))
	for i, r := range replicas {
		recs, _ := r.leases.snapshot()
		for _, rec := range recs {
			if rec.key != key {
				continue
			}
			all = append(all, rec)
			if rec.Granted > rec.want {
				t.Errorf("replica %d: lease granted %d cells, asked %d", i, rec.Granted, rec.want)
			}
			if rec.Granted == 0 {
				continue
			}
			perReplica[i] += rec.Granted
			last := rec.First.Add(time.Duration(rec.Granted-1) * rec.interval)
			spans = append(spans, span{rec, rec.First, last, i})
			if rec.First.Before(rec.Now.Add(-rec.tolerance - slack)) {
				t.Errorf("replica %d: first cell conforms %v before its lease, the burst allows %v", i, rec.Now.Sub(rec.First), rec.tolerance)
			}
			if last.After(rec.Now.Add(rec.horizon + slack)) {
				t.Errorf("replica %d: last cell conforms %v after its lease, beyond its horizon %v", i, last.Sub(rec.Now), rec.horizon)
			}
		}
	}
	if len(all) == 0 {
		t.Fatalf("no lease of %s recorded", key)
	}
	slices.SortFunc(spans, func(a, b span) int { return a.first.Compare(b.first) })
	for k := 1; k < len(spans); k++ {
		prev, cur := spans[k-1], spans[k]
		if gap := cur.first.Sub(prev.last); gap < cur.rec.interval-slack {
			t.Errorf("cells of replicas %d and %d conform %v apart, want at least %v", prev.owner, cur.owner, gap, cur.rec.interval)
		}
	}
	// The budget against the time that passed, in the database's clock.
	slices.SortFunc(all, func(a, b leaseRecord) int { return a.Now.Compare(b.Now) })
	// By a lease, the cells leased so far conform from the first lease's time less the
	// burst on, and by the furthest any lease reached (its time plus its horizon).
	t0, total := all[0].Now, 0
	var reach time.Time
	for _, rec := range all {
		total += rec.Granted
		reach = later(reach, rec.Now.Add(rec.horizon))
		allowed := int((reach.Sub(t0)+rec.tolerance+slack)/rec.interval) + 1
		if total > allowed {
			t.Errorf("%v after the first lease the deployment had %d cells reaching %v ahead, the budget allows %d",
				rec.Now.Sub(t0), total, reach.Sub(rec.Now), allowed)
			break
		}
	}
	return perReplica
}

// recentCells is how many cells of key the given replicas leased in the last span of
// the database's clock, as far as the logs of all replicas tell.
func recentCells(replicas []*replica, key string, span time.Duration, of ...int) (int, bool) {
	var last time.Time
	for _, r := range replicas {
		recs, _ := r.leases.snapshot()
		for _, rec := range recs {
			if rec.key == key && rec.Now.After(last) {
				last = rec.Now
			}
		}
	}
	n, first := 0, last
	for _, i := range of {
		recs, _ := replicas[i].leases.snapshot()
		for _, rec := range recs {
			if rec.key == key && rec.Now.After(last.Add(-span)) {
				n += rec.Granted
			}
			if rec.key == key && rec.Now.Before(first) {
				first = rec.Now
			}
		}
	}
	return n, last.Sub(first) >= span
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
