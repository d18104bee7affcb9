package nexthink

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// retryPolicy says which failures of a call may be retried.
type retryPolicy int

const (
	// retryReads retries every transient failure: the call reads, or repeating it
	// does no harm (an export submitted twice only costs a second export).
	retryReads retryPolicy = iota
	// retryUnsent retries only what certainly did not run: no connection, no token,
	// 429 or 503. For calls with side effects (remote-action trigger).
	retryUnsent
)

// mayRetry reports whether e may be retried under p.
func (p retryPolicy) mayRetry(e *Error) bool {
	if !e.retryable() {
		return false
	}
	if p == retryUnsent {
		return e.unsent || e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
	}
	return true
}

// newBackOff is the schedule between attempts; Retry-After lengthens a step.
func newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 250 * time.Millisecond
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0 // do bounds the total with RetryFor and Retry-After
	b.Reset()
	return b
}

// do runs req: one attempt, one more with a fresh token after a 401, and retries of
// transient failures as req.policy allows, with exponential backoff honouring
// Retry-After, as long as the next attempt starts within RetryFor of the first and
// before ctx's deadline, a 429's Retry-After is within MaxWait, and the instance's
// gate would let it through within MaxWait. It decodes a 2xx JSON answer into out
// and returns the status.
func (c *Client) do(ctx context.Context, req request, out any) (int, error) {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return 0, &Error{Instance: c.name, Call: req.call, Target: req.target, Code: CodeInvalid,
				Message: "cannot encode the request body", Err: err}
		}
	}
	bo := newBackOff()
	start := time.Now()
	refreshed := false
	for n := 1; ; n++ {
		status, e := c.attempt(ctx, req, body, n, out)
		if e == nil {
			return status, nil
		}
		if e.Status == http.StatusUnauthorized && e.Call == req.call && !refreshed {
			refreshed = true // the token was dropped: one more try with a fresh one
			c.log.Info("nexthink token refused, fetching a new one", "call", req.call, "attempt", n)
			continue
		}
		if !req.policy.mayRetry(e) {
			return status, e
		}
		wait := max(bo.NextBackOff(), e.RetryAfter)
		if time.Since(start)+wait > c.retryFor {
			return status, e
		}
		if e.Status == http.StatusTooManyRequests && e.RetryAfter > c.maxWait {
			// The instance asks for more patience than the caller has: its 429 and
			// Retry-After are the answer now, not after a wait.
			return status, e
		}
		if hold := c.gate.holds(time.Now()); hold > wait+c.maxWait {
			// The instance is known to be failing for longer than this caller would
			// wait at the gate: this failure is the answer now.
			return status, e
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return status, e
		}
		c.log.Warn("nexthink call failed, retrying", "call", req.call, "status", e.Status, "code", e.Code,
			"attempt", n, "retry_in_ms", wait.Milliseconds())
		if err := sleep(ctx, wait); err != nil {
			ce := c.ctxError(ctx, req.call, err)
			ce.Target = req.target
			return 0, ce
		}
	}
}
