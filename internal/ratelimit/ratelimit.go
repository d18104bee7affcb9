// Package ratelimit enforces call rates for the deployment as a whole: every replica
// takes its calls from one budget kept in PostgreSQL (a GCRA row per key, updated in
// one atomic statement), so two ingress and two worker replicas still send the tenant
// at most the configured rate. Local is the same contract for one process.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Limiter grants calls.
type Limiter interface {
	// Take asks for one call. It returns how long to wait before making it (at most
	// maxWait), or a *Limited error when the call would have to wait longer; a refused
	// call consumes nothing, so overload never pushes the budget into the future.
	Take(ctx context.Context, maxWait time.Duration) (time.Duration, error)
}

// Rate is calls per second with a burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Limited says a call was refused and when to retry.
type Limited struct {
	Key        string
	RetryAfter time.Duration
	PerSecond  float64
}

func (e *Limited) Error() string {
	return fmt.Sprintf("rate limit %s: retry after %s", e.Key, e.RetryAfter.Round(time.Millisecond))
}

// Problem is the answer a client gets: 429 with Retry-After.
func (e *Limited) Problem(detail string) *problem.Error {
	return (&problem.Error{Code: problem.RateLimited, Detail: detail, Limit: e.PerSecond, Err: e}).Retry(e.RetryAfter)
}

// CacheKey names the shared limiter of cache reads (MAX_CACHE_REQUESTS_PER_SECOND).
const CacheKey = "cache"

// TakeCacheRead takes one read from the cache's budget l without waiting, or refuses
// it as the client hears it: 429 with Retry-After, or 503 when the budget cannot be
// checked. A nil l does not limit.
func TakeCacheRead(ctx context.Context, l Limiter) error {
	if l == nil {
		return nil
	}
	_, err := l.Take(ctx, 0)
	var limited *Limited
	switch {
	case errors.As(err, &limited):
		return limited.Problem("the cache takes at most MAX_CACHE_REQUESTS_PER_SECOND reads per second")
	case err != nil:
		return problem.Wrap(problem.ServiceUnavailable, err, "the cache's rate limit cannot be checked right now").Retry(time.Second)
	}
	return nil
}

// Shared hands out limiters whose budget every replica shares.
type Shared struct {
	db *store.DB
}

// NewShared returns a factory of shared limiters.
func NewShared(db *store.DB) *Shared { return &Shared{db: db} }

// Limiter returns the limiter of key at rate r.
func (s *Shared) Limiter(key string, r Rate) Limiter {
	interval := time.Duration(float64(time.Second) / r.PerSecond)
	return &shared{db: s.db, key: key, rate: r.PerSecond, interval: interval, tolerance: time.Duration(max(r.Burst-1, 0)) * interval}
}

type shared struct {
	db                  *store.DB
	key                 string
	rate                float64
	interval, tolerance time.Duration
}

func (l *shared) Take(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	ok, d, err := l.db.TakeRate(ctx, l.key, l.interval, l.tolerance, maxWait)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, &Limited{Key: l.key, RetryAfter: d, PerSecond: l.rate}
	}
	return d, nil
}

// Local is a limiter for one process.
type Local struct {
	key  string
	rate float64
	l    *rate.Limiter
}

// NewLocal returns a process-local limiter.
func NewLocal(key string, r Rate) *Local {
	return &Local{key: key, rate: r.PerSecond, l: rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))}
}

func (l *Local) Take(_ context.Context, maxWait time.Duration) (time.Duration, error) {
	res := l.l.Reserve()
	d := res.Delay()
	if d > maxWait || d == rate.InfDuration {
		res.Cancel()
		return 0, &Limited{Key: l.key, RetryAfter: d, PerSecond: l.rate}
	}
	return d, nil
}

// Observed reports every refusal of l to onRefuse (metrics).
func Observed(l Limiter, onRefuse func()) Limiter {
	if onRefuse == nil {
		return l
	}
	return observed{l, onRefuse}
}

type observed struct {
	Limiter
	onRefuse func()
}

func (o observed) Take(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	d, err := o.Limiter.Take(ctx, maxWait)
	if _, ok := err.(*Limited); ok {
		o.onRefuse()
	}
	return d, err
}
