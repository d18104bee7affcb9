// Package admission decides, before a request costs anything, whether a process
// serves it now, lets it wait a little, or refuses it.
//
// A Controller serves at most Limit requests at once. One beyond waits in a short
// queue, under a controlled-delay rule (CoDel as used for RPC queues): while the queue
// empties now and then, waiting is the normal smoothing of bursts, first come first
// served, for at most Interval. When the queue has not been empty for a whole
// Interval it is standing: the process gets more than it can do, and whoever waits
// longer than Target is refused, newest served first (LIFO), since the oldest
// waiters' clients are the likeliest to have given up. Refusing early is what keeps
// the served requests' latency low under any offered load: work admitted is done
// while its client still waits for it, and a refusal costs next to nothing.
//
// Optionally (Adaptive) the limit follows the observed latency: it grows by one while
// requests take less than twice the lowest latency seen lately, and shrinks by a
// tenth, not below MinLimit, when they take more (additive increase, multiplicative
// decrease). Requests queue behind a limit set too high inside the process (CPU,
// connection pools) where no rule can refuse them; the adaptive limit keeps that
// queue here.
package admission

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// Config bounds a Controller. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Limit is the most requests served at once (the ceiling of an adaptive limit).
	Limit int
	// MinLimit is the floor of an adaptive limit.
	MinLimit int
	// Queue is the most requests waiting for a slot; beyond, refused at once.
	// Negative: no queue.
	Queue int
	// Target is the queue delay tolerated while the queue stands.
	Target time.Duration
	// Interval is how long the queue may go without emptying before it counts as
	// standing, and the longest wait while it does not.
	Interval time.Duration
	// Adaptive lets the limit follow the observed latency between MinLimit and Limit.
	Adaptive bool
}

// DefaultConfig is a Controller's tuning when nothing is configured.
func DefaultConfig() Config {
	return Config{Limit: 64, MinLimit: 8, Queue: 128, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Limit <= 0 {
		c.Limit = d.Limit
	}
	if c.MinLimit <= 0 {
		c.MinLimit = min(d.MinLimit, c.Limit)
	}
	c.MinLimit = min(c.MinLimit, c.Limit)
	switch {
	case c.Queue < 0:
		c.Queue = 0
	case c.Queue == 0:
		c.Queue = d.Queue
	}
	if c.Target <= 0 {
		c.Target = d.Target
	}
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	return c
}

// Refusal reasons.
var (
	// ErrQueueFull: the queue was full when the request came.
	ErrQueueFull = errors.New("admission: queue full")
	// ErrQueueDelay: the request waited as long as the queue's rule allows.
	ErrQueueDelay = errors.New("admission: queue delay")
)

// Controller admits requests; see the package comment. Its zero value is not usable:
// build one with New.
type Controller struct {
	cfg Config

	mu       sync.Mutex
	limit    int
	inFlight int
	queue    list.List // of *waiter, oldest at the front
	// waitingSince is when a request last found the queue empty and had to wait;
	// zero once a request is admitted at once or the queue is emptied by serving it.
	// Refusals do not empty it: a queue emptied by turning its waiters away stands.
	waitingSince time.Time

	// Adaptive limit: the lowest latency of the current window and of the last,
	// samples within the limit since it last grew, and when it last shrank.
	minLat, lastMinLat time.Duration
	windowEnd          time.Time
	grow               int
	lastCut            time.Time
}

type waiter struct {
	since time.Time
	done  chan bool // true: admitted; false: refused
	elem  *list.Element
}

// New builds a Controller.
func New(c Config) *Controller {
	c = c.withDefaults()
	return &Controller{cfg: c, limit: c.Limit}
}

// Config is the controller's tuning, with defaults applied.
func (c *Controller) Config() Config { return c.cfg }

// Ticket is an admitted request's slot. Release it when the request is done.
type Ticket struct {
	c       *Controller
	start   time.Time
	waited  time.Duration
	release sync.Once
}

// Waited is how long the request waited in the queue.
func (t *Ticket) Waited() time.Duration { return t.waited }

// Release gives the slot back; the time since admission is a latency sample for an
// adaptive limit. Only the first Release or Leave counts.
func (t *Ticket) Release() {
	t.release.Do(func() { t.c.release(time.Since(t.start), true) })
}

// Leave gives the slot back without a latency sample: the request goes on to wait
// for something else (a long poll, a stream) whose bound is elsewhere.
func (t *Ticket) Leave() {
	t.release.Do(func() { t.c.release(0, false) })
}

// Acquire admits a request at once, after a wait in the queue, or refuses it with
// ErrQueueFull or ErrQueueDelay (or ctx's error, when its client goes first).
func (c *Controller) Acquire(ctx context.Context) (*Ticket, error) {
	now := time.Now()
	c.mu.Lock()
	c.expire(now)
	if c.inFlight < c.limit && c.queue.Len() == 0 {
		c.inFlight++
		c.waitingSince = time.Time{}
		c.mu.Unlock()
		return &Ticket{c: c, start: now}, nil
	}
	if c.queue.Len() >= c.cfg.Queue {
		c.mu.Unlock()
		return nil, ErrQueueFull
	}
	if c.waitingSince.IsZero() {
		c.waitingSince = now
	}
	w := &waiter{since: now, done: make(chan bool, 1)}
	w.elem = c.queue.PushBack(w)
	wait := c.maxWait(now)
	c.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case ok := <-w.done:
		if ok {
			t := time.Now()
			return &Ticket{c: c, start: t, waited: t.Sub(now)}, nil
		}
		return nil, ErrQueueDelay
	case <-timer.C:
		err = ErrQueueDelay
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	if w.elem == nil { // admitted or refused meanwhile
		c.mu.Unlock()
		if <-w.done {
			if ctx.Err() != nil { // its client is gone: the slot goes to the next
				c.release(0, false)
				return nil, ctx.Err()
			}
			t := time.Now()
			return &Ticket{c: c, start: t, waited: t.Sub(now)}, nil
		}
		return nil, ErrQueueDelay
	}
	c.remove(w)
	c.mu.Unlock()
	return nil, err
}

// standing reports whether requests have had to wait for a whole interval without
// the queue being emptied by serving them.
func (c *Controller) standing(now time.Time) bool {
	return !c.waitingSince.IsZero() && now.Sub(c.waitingSince) >= c.cfg.Interval
}

// maxWait is how long a request just queued may wait.
func (c *Controller) maxWait(now time.Time) time.Duration {
	if c.standing(now) {
		return c.cfg.Target
	}
	return c.cfg.Interval
}

// expire refuses, oldest first, the waiters past their wait, so that a standing
// queue turns its oldest away at once rather than when their timers fire.
func (c *Controller) expire(now time.Time) {
	wait := c.maxWait(now)
	for e := c.queue.Front(); e != nil; e = c.queue.Front() {
		w := e.Value.(*waiter)
		if now.Sub(w.since) < wait {
			return
		}
		c.remove(w)
		w.done <- false
	}
}

func (c *Controller) remove(w *waiter) {
	c.queue.Remove(w.elem)
	w.elem = nil
}

func (c *Controller) release(lat time.Duration, sample bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	if sample && c.cfg.Adaptive {
		c.adapt(now, lat)
	}
	c.expire(now)
	for c.inFlight < c.limit && c.queue.Len() > 0 {
		// A standing queue serves its newest: the oldest are the likeliest gone.
		e := c.queue.Front()
		if c.standing(now) {
			e = c.queue.Back()
		}
		w := e.Value.(*waiter)
		c.remove(w)
		c.inFlight++
		w.done <- true
		if c.queue.Len() == 0 {
			c.waitingSince = time.Time{}
		}
	}
}

// adaptWindow is how long a lowest latency is remembered: long enough to span
// bursts, short enough to follow a machine whose load changes.
const adaptWindow = 10 * time.Second

// adapt moves the limit by one sample, as TCP moves its window: up by one after a
// limit's worth of samples under twice the lowest latency lately seen, down by a
// tenth, once per latency at most, when above and the limit is in use.
func (c *Controller) adapt(now time.Time, lat time.Duration) {
	if now.After(c.windowEnd) {
		c.lastMinLat, c.minLat, c.windowEnd = c.minLat, 0, now.Add(adaptWindow)
	}
	if c.minLat == 0 || lat < c.minLat {
		c.minLat = lat
	}
	floor := c.minLat
	if c.lastMinLat > 0 && c.lastMinLat < floor {
		floor = c.lastMinLat
	}
	switch {
	case lat > 2*floor+time.Millisecond:
		// Only when the limit, not a lull, sets the latency; once per latency, as the
		// samples of one excess all arrive together.
		if c.inFlight+1 >= c.limit/2 && now.Sub(c.lastCut) >= lat {
			c.limit = max(c.cfg.MinLimit, c.limit-max(1, c.limit/10))
			c.lastCut, c.grow = now, 0
		}
	case c.inFlight+1 >= c.limit: // grow only a limit that is reached
		if c.grow++; c.grow >= c.limit {
			c.limit = min(c.cfg.Limit, c.limit+1)
			c.grow = 0
		}
	}
}

// Refusing reports whether a request arriving now would find every slot taken and
// the queue full or standing: it would be refused at once, or after at most Target.
// A listener asks it to refuse a new connection before reading its request, for
// less than the refusal costs once the request is parsed.
func (c *Controller) Refusing() bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight >= c.limit && (c.queue.Len() >= c.cfg.Queue || c.standing(now))
}

// Stats is a snapshot for metrics.
type Stats struct {
	InFlight, Queued, Limit int
}

// Stats is the controller's state now.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{InFlight: c.inFlight, Queued: c.queue.Len(), Limit: c.limit}
}
