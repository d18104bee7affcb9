package nexthink

import (
	"context"
	"errors"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// Limiter grants upstream calls: ratelimit.Shared holds for the whole deployment,
// ratelimit.NewLocal for one process. A refusal reserves nothing, so a refused caller
// does not push back the callers after it.
type Limiter = ratelimit.Limiter

// unlimited grants every call at once (an instance configured without a limit).
type unlimited struct{}

func (unlimited) Take(ctx context.Context, _ time.Duration) (time.Duration, error) {
	return 0, ctx.Err()
}

// take waits for lim within the client's MaxWait and ctx's deadline, or fails at once
// with a rate-limited *Error carrying the wait.
func (c *Client) take(ctx context.Context, lim Limiter, call string) *Error {
	limit := c.maxWait
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(deadline))
	}
	d, err := lim.Take(ctx, max(limit, 0))
	var limited *ratelimit.Limited
	switch {
	case err == nil && d <= limit:
	case err == nil, errors.As(err, &limited):
		if limited != nil {
			d = limited.RetryAfter
		}
		// Debug: under overload every refusal would log; the edge logs the 429 once.
		c.log.Debug("nexthink call refused by rate limiter", "call", call, "retry_after_ms", d.Milliseconds())
		return &Error{Instance: c.name, Call: call, Code: CodeRateLimited, RetryAfter: d,
			Message: "dexbridge's rate limit for this instance is reached", Err: err}
	case ctx.Err() != nil:
		return c.ctxError(ctx, call, err)
	default: // a shared limiter's store failed: refuse rather than call unlimited
		return &Error{Instance: c.name, Call: call, Code: CodeLimiterFailed, Message: "the rate limiter failed", Err: err}
	}
	if err := sleep(ctx, d); err != nil {
		return c.ctxError(ctx, call, err)
	}
	return nil
}
