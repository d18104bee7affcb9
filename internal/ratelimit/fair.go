package ratelimit

import (
	"context"
	"math"
	"slices"
	"time"
)

type callerKey struct{}

// WithCaller returns ctx naming who asks for a call (an API key's id), so a limiter
// that is short shares its budget fairly among the callers asking.
func WithCaller(ctx context.Context, caller string) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFrom is the caller named by WithCaller, "" when none was.
func CallerFrom(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(string)
	return c
}

// caller is what a limiter knows of one caller at this replica.
type caller struct {
	demand  meter // calls per second, granted or refused
	granted meter // grants per second
	last    time.Time
}

// Fair shares are revised at each lease; a caller quiet for callerIdle is forgotten,
// and at most maxCallers are told apart (more share one entry).
const (
	callerIdle = 10 * time.Second
	maxCallers = 4096
	// headroom is how far above its measured demand a caller within its share may go
	// before it competes with the heavy callers: demand measured over a second
	// understates a burst within a lease.
	headroom = 1.5
)

// fairLevel is the max-min fair level of demands sharing capacity: each demand at
// or below it is met whole and each larger one gets the level, so that the levels and
// the met demands add up to capacity. It is +Inf when every demand fits.
func fairLevel(capacity float64, demands []float64) float64 {
	d := slices.Clone(demands)
	slices.Sort(d)
	left := capacity
	for i, x := range d {
		share := left / float64(len(d)-i)
		if x > share {
			return max(share, 0)
		}
		left -= x
	}
	return math.Inf(1)
}

// fairShares is the state of fairness at one replica, revised at each lease.
type fairShares struct {
	level       float64 // max-min level of this replica's supply; +Inf when it is not short
	reserve     float64 // cells kept for the callers within their share
	constrained int     // callers above the level
}

// reviseShares recomputes the fair level from the callers' demand and what this
// replica obtained lately, and forgets idle callers. Called with l.mu held.
func (l *leased) reviseShares(now time.Time) {
	for id, c := range l.callers {
		if now.Sub(c.last) > callerIdle {
			delete(l.callers, id)
		}
	}
	l.fair = fairShares{level: math.Inf(1)}
	if !l.short || len(l.callers) < 2 {
		return
	}
	demands := make([]float64, 0, len(l.callers))
	for _, c := range l.callers {
		demands = append(demands, c.demand.rate(now))
	}
	level := fairLevel(l.supply.rate(now), demands)
	within := 0.0
	for _, d := range demands {
		if d <= level {
			within += d
		} else {
			l.fair.constrained++
		}
	}
	l.fair.level = level
	if l.fair.constrained > 0 && within > 0 {
		// Enough for the callers within their share until the next lease lands
		// (1.5 periods at most), but no more than half a lease, or a small budget (a
		// cell or two per lease) would sit unused while the callers above their share
		// wait; and at least one cell. The callers above their share take the oldest
		// cells, so the reserve is renewed at each lease, not left to expire.
		l.fair.reserve = max(1, min(math.Ceil(within*headroom*1.5*l.period.Seconds())+1, float64(l.lastWant/2)))
	}
}

// callerOf returns the state of id, creating it. Called with l.mu held.
func (l *leased) callerOf(id string, now time.Time) *caller {
	c := l.callers[id]
	if c == nil {
		if len(l.callers) >= maxCallers {
			id = ""
			c = l.callers[id]
		}
		if c == nil {
			c = &caller{}
			l.callers[id] = c
		}
	}
	c.last = now
	return c
}

// favoured says c is within its share while others are above theirs: when it finds
// no cell, it need not wait for the next lease a period away. Called with l.mu held.
func (l *leased) favoured(c *caller, now time.Time) bool {
	return l.fair.constrained > 0 && c.demand.rate(now) <= l.fair.level
}

// admits says whether the fair share lets c take one of the cells usable by until.
// A caller within its share takes any cell; a caller above it only those beyond the
// reserve, and, when several are above it, only while it has had less than about the
// level. Called with l.mu held.
func (l *leased) admits(c *caller, now, until time.Time) bool {
	if math.IsInf(l.fair.level, 1) || c.demand.rate(now) <= l.fair.level {
		return true
	}
	if float64(l.usable(until)) <= l.fair.reserve {
		return false
	}
	return l.fair.constrained < 2 || c.granted.rate(now) < l.fair.level*1.1
}
