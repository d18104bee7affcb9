package nexthink

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// gate keeps a failing or busy instance from being hammered, for every call of every
// policy view of a client (every service of a process):
//
//   - after gateAfter attempts in a row failed for want of the instance (no answer,
//     a timeout, 5xx), it closes for a cool-down (gateMin, doubling up to gateMax, at
//     least the instance's Retry-After); then one call probes the instance, and its
//     outcome opens the gate or closes it for the next cool-down;
//   - a 429's Retry-After holds every call, not just the one that got it.
//
// A call waits at the gate within its MaxWait, as for the rate limiter; beyond, it
// fails at once, with the wait as RetryAfter (CodeUnavailable, 503 to a chatbot; or
// CodeRateLimited, 429, while a Retry-After holds), instead of waiting on the
// instance and retrying: a chatbot does not pay for an outage the process already
// knows of, and the instance sees one probe per cool-down, not every chatbot's
// retries. Discovery, more patient, waits for the probe. Each process has its own
// gate per instance.
type gate struct {
	mu       sync.Mutex
	failures int           // attempts in a row that failed for want of the instance
	until    time.Time     // no call before then
	cooldown time.Duration // the current cool-down, once closed
	probing  bool          // a call is testing whether the instance is back
	busy     bool          // until is the instance's Retry-After, not a cool-down
}

const (
	gateAfter = 3
	gateMin   = 5 * time.Second
	gateMax   = 30 * time.Second
	// probeWait is how long a call waits before looking again while another probes.
	probeWait = 100 * time.Millisecond
)

// enter admits an attempt at now (probe: it is the one testing the instance), or
// says how long until the instance may be asked, and whether because it is busy
// (its Retry-After) rather than failing.
func (g *gate) enter(now time.Time) (wait time.Duration, probe, busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case now.Before(g.until):
		return g.until.Sub(now), false, g.busy
	case g.failures < gateAfter:
		return 0, false, false
	case g.probing:
		return probeWait, false, false
	}
	g.probing = true
	return 0, true, false
}

// holds is how long the gate stays closed from now (0 when open, or open to a
// probe).
func (g *gate) holds(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.until.Sub(now), 0)
}

// done records the outcome of an attempt that entered at now.
func (g *gate) done(e *Error, probe bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	switch {
	case e == nil, !e.retryable() && e.Status != 0:
		// An answer: the instance is there (a 4xx is the request's fault, not its).
		g.failures, g.cooldown = 0, 0
	case e.Status == http.StatusTooManyRequests:
		if until := now.Add(max(e.RetryAfter, time.Second)); until.After(g.until) {
			g.until, g.busy = until, true
		}
	case e.retryable():
		g.failures++
		if g.failures >= gateAfter && (probe || g.cooldown == 0) {
			g.cooldown = min(max(2*g.cooldown, gateMin), gateMax)
			if until := now.Add(max(g.cooldown, e.RetryAfter)); until.After(g.until) {
				g.until, g.busy = until, false
			}
		}
	}
	// Anything else (refused by dexbridge's limiter, cancelled by the caller) says
	// nothing of the instance.
}

// pass waits at the gate within the client's MaxWait and ctx's deadline, or fails at
// once with the wait as RetryAfter: CodeUnavailable, or CodeRateLimited while the
// instance's Retry-After holds (429 to a chatbot, like the instance's own answer).
func (c *Client) pass(ctx context.Context, call, target string) (probe bool, e *Error) {
	limit := c.maxWait
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(deadline))
	}
	start := time.Now()
	for {
		wait, probe, busy := c.gate.enter(time.Now())
		if wait == 0 {
			return probe, nil
		}
		if time.Since(start)+wait > limit {
			if busy {
				return false, &Error{Instance: c.name, Call: call, Target: target, Code: CodeRateLimited, RetryAfter: wait, unsent: true,
					Message: "the instance asked dexbridge to wait (Retry-After)"}
			}
			return false, &Error{Instance: c.name, Call: call, Target: target, Code: CodeUnavailable, RetryAfter: wait, unsent: true,
				Message: fmt.Sprintf("the instance failed its last calls; dexbridge asks it again in %s", wait.Round(time.Second))}
		}
		if err := sleep(ctx, wait); err != nil {
			e := c.ctxError(ctx, call, err)
			e.Target = target
			return false, e
		}
	}
}
