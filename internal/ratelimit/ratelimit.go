package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// TakeCacheRead takes one read from the cache's budget l without waiting, on behalf
// of caller (the API key's id: a short budget is shared fairly among the keys), or
// refuses it as the client hears it: 429 with Retry-After, or 503 when the budget
// cannot be checked. A nil l does not limit.
func TakeCacheRead(ctx context.Context, l Limiter, caller string) error {
	if l == nil {
		return nil
	}
	_, err := l.Take(WithCaller(ctx, caller), 0)
	var limited *Limited
	switch {
	case errors.As(err, &limited):
		return limited.Problem("the cache takes at most MAX_CACHE_REQUESTS_PER_SECOND reads per second, shared fairly among API keys")
	case err != nil:
		return problem.Wrap(problem.ServiceUnavailable, err, "the cache's rate limit cannot be checked right now").Retry(time.Second)
	}
	return nil
}

// Shared hands out limiters whose budget every replica shares (see the package
// documentation). It keeps one limiter per key, so asking for the limiter of a key
// at every request is cheap; limiters unused for a while are forgotten.
type Shared struct {
	db Leaser

	mu     sync.Mutex
	limits map[string]*leased
	swept  time.Time
}

// idleLimiter is how long an unused limiter is kept.
const idleLimiter = 5 * time.Minute

// NewShared returns a factory of shared limiters whose budgets live in db.
func NewShared(db *store.DB) *Shared { return &Shared{db: db, limits: map[string]*leased{}} }

// Limiter returns the limiter of key at rate r (r.PerSecond above 0).
func (s *Shared) Limiter(key string, r Rate) Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.swept) > time.Minute {
		s.swept = now
		for k, l := range s.limits {
			l.mu.Lock()
			idle := now.Sub(l.lastUse) > idleLimiter && l.inflight == nil
			l.mu.Unlock()
			if idle {
				delete(s.limits, k)
			}
		}
	}
	l := s.limits[key]
	if l == nil || l.r != r {
		// A new rate starts afresh; the database row carries the budget over.
		l = newLeased(s.db, key, r)
		l.lastUse = now
		s.limits[key] = l
	}
	return l
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

// Observed reports every refusal of l to onRefuse (metrics), with the caller named
// by WithCaller.
func Observed(l Limiter, onRefuse func(caller string)) Limiter {
	if onRefuse == nil {
		return l
	}
	return observed{l, onRefuse}
}

type observed struct {
	Limiter
	onRefuse func(caller string)
}

func (o observed) Take(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	d, err := o.Limiter.Take(ctx, maxWait)
	if _, ok := err.(*Limited); ok {
		o.onRefuse(CallerFrom(ctx))
	}
	return d, err
}
