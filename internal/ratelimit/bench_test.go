package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// BenchmarkTake compares the shared limiter that took every call from the database
// (perCall, below) with the leased one, on one to three replicas (each its own pool on
// one database, four callers each), in two regimes: "within", a budget far above the
// calls (every call granted: the cache's limit out of the way), and "storm", the
// cache's default 500/s (its burst spent before timing) asked for as fast as the
// callers go. Besides ns/op it reports
// Take calls per second, grants per second and the database statements per 1 000
// grants. Run it on one core and on two:
//
//	DATABASE_URL=... go test -run '^$' -bench Take -cpu 1,2 ./internal/ratelimit/
func BenchmarkTake(b *testing.B) {
	impls := []struct {
		name    string
		limiter func(r *replica, key string, rate ratelimit.Rate) ratelimit.Limiter
	}{
		{"per-call", func(r *replica, key string, rate ratelimit.Rate) ratelimit.Limiter {
			return newPerCall(r.pool, key, rate)
		}},
		{"leased", func(r *replica, key string, rate ratelimit.Rate) ratelimit.Limiter {
			return r.limiters.Limiter(key, rate)
		}},
	}
	regimes := []struct {
		name  string
		rate  ratelimit.Rate
		spend bool // the burst before timing, so that grants/s is the rate kept
	}{
		{"within", ratelimit.Rate{PerSecond: 1e6, Burst: 1e6}, false},
		{"storm", ratelimit.Rate{PerSecond: 500, Burst: 500}, true},
	}
	for _, regime := range regimes {
		for _, impl := range impls {
			for _, n := range []int{1, 2, 3} {
				b.Run(fmt.Sprintf("%s/%s/replicas=%d", regime.name, impl.name, n), func(b *testing.B) {
					replicas := newReplicas(b, n)
					var limiters []ratelimit.Limiter
					for _, r := range replicas {
						limiters = append(limiters, impl.limiter(r, "cache", regime.rate))
					}
					ctx := context.Background()
					for _, l := range limiters {
						if !regime.spend {
							break
						}
						for range 100_000 {
							if _, err := l.Take(ctx, 0); err != nil {
								break
							}
						}
					}
					for _, r := range replicas {
						r.statements.n.Store(0)
					}
					var next, grants atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					for _, l := range limiters {
						for range 4 {
							wg.Go(func() {
								for next.Add(1) <= int64(b.N) {
									_, err := l.Take(ctx, 0)
									var lim *ratelimit.Limited
									switch {
									case err == nil:
										grants.Add(1)
									case !errors.As(err, &lim):
										b.Error(err)
										return
									}
								}
							})
						}
					}
					wg.Wait()
					b.StopTimer()
					var statements int64
					for _, r := range replicas {
						statements += r.statements.n.Load()
					}
					secs := b.Elapsed().Seconds()
					b.ReportMetric(float64(b.N)/secs, "takes/s")
					b.ReportMetric(float64(grants.Load())/secs, "grants/s")
					if grants.Load() > 0 {
						b.ReportMetric(1000*float64(statements)/float64(grants.Load()), "stmts/1k-grants")
					}
				})
			}
		}
	}
}

// perCall is the shared limiter as it was before leases, kept here to be measured
// against: one GCRA step on the limit's row per call, and a second statement to say
// when to retry after a refusal. Its SQL is the store's statement of that time.
type perCall struct {
	pool                *pgxpool.Pool
	key                 string
	rate                float64
	interval, tolerance time.Duration
}

func newPerCall(pool *pgxpool.Pool, key string, r ratelimit.Rate) *perCall {
	interval := time.Duration(float64(time.Second) / r.PerSecond)
	return &perCall{pool: pool, key: key, rate: r.PerSecond, interval: interval, tolerance: time.Duration(max(r.Burst-1, 0)) * interval}
}

func (l *perCall) Take(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	var tat, now time.Time
	err := l.pool.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, tat) VALUES ($1, clock_timestamp() + make_interval(secs => $2))
		ON CONFLICT (key) DO UPDATE
			SET tat = greatest(r.tat, clock_timestamp()) + make_interval(secs => $2)
			WHERE greatest(r.tat, clock_timestamp()) - clock_timestamp() <= make_interval(secs => $3)
		RETURNING tat, clock_timestamp()`,
		l.key, l.interval.Seconds(), (l.tolerance+maxWait).Seconds()).Scan(&tat, &now)
	if err == nil {
		return max(0, tat.Sub(now)-l.interval-l.tolerance), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	if err := l.pool.QueryRow(ctx, `SELECT tat, clock_timestamp() FROM rate_limits WHERE key = $1`, l.key).Scan(&tat, &now); err != nil {
		return 0, err
	}
	return 0, &ratelimit.Limited{Key: l.key, RetryAfter: max(time.Millisecond, tat.Sub(now)-l.tolerance), PerSecond: l.rate}
}
