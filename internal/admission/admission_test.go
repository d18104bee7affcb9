package admission

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in a synctest bubble: time is the bubble's fake clock, moved only
// when every goroutine waits, so waits and expiries are exact, not raced.

type result struct {
	t   *Ticket
	err error
}

// acquire starts an Acquire in its own goroutine and returns where its result lands
// once every goroutine of the bubble is blocked.
func acquire(c *Controller, ctx context.Context) chan result {
	ch := make(chan result, 1)
	go func() {
		t, err := c.Acquire(ctx)
		ch <- result{t, err}
	}()
	synctest.Wait()
	return ch
}

func pending(t *testing.T, ch chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: decided (%v) while it should wait", what, r.err)
	default:
	}
}

func admitted(t *testing.T, ch chan result, what string) *Ticket {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: refused (%v), want admitted", what, r.err)
		}
		return r.t
	default:
		t.Fatalf("%s: still waiting, want admitted", what)
	}
	return nil
}

func refused(t *testing.T, ch chan result, want error, what string) {
	t.Helper()
	select {
	case r := <-ch:
		if !errors.Is(r.err, want) {
			t.Fatalf("%s: got %v, want %v", what, r.err, want)
		}
	default:
		t.Fatalf("%s: still waiting, want refused with %v", what, want)
	}
}

// TestWithinTheLimitAtOnceBeyondInTurn: the limit's requests are admitted at once,
// the next wait and are admitted first come first served as slots come back, and a
// full queue refuses at once.
func TestWithinTheLimitAtOnceBeyondInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 2, Queue: 2, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond})
		ctx := context.Background()
		a := admitted(t, acquire(c, ctx), "first")
		b := admitted(t, acquire(c, ctx), "second")
		w1 := acquire(c, ctx)
		w2 := acquire(c, ctx)
		pending(t, w1, "third")
		pending(t, w2, "fourth")
		refused(t, acquire(c, ctx), ErrQueueFull, "fifth, queue full")
		if s := c.Stats(); s.InFlight != 2 || s.Queued != 2 || s.Limit != 2 {
			t.Fatalf("stats %+v, want 2 in flight, 2 queued, limit 2", s)
		}

		time.Sleep(time.Millisecond) // a queue that empties within the interval is not standing
		a.Release()
		synctest.Wait()
		third := admitted(t, w1, "third after a release (FIFO)")
		pending(t, w2, "fourth")
		if third.Waited() != time.Millisecond {
			t.Errorf("third waited %s, want 1ms", third.Waited())
		}
		a.Release() // a second release of the same ticket does nothing
		synctest.Wait()
		pending(t, w2, "fourth after a double release")
		b.Release()
		synctest.Wait()
		admitted(t, w2, "fourth").Release()
		third.Release()
		if s := c.Stats(); s.InFlight != 0 || s.Queued != 0 {
			t.Fatalf("stats %+v after every release, want none in flight or queued", s)
		}
	})
}

// TestAWaitEndsAfterTheInterval: with nothing released, a waiter in a queue that is
// not standing is refused after the interval, not before.
func TestAWaitEndsAfterTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 1, Queue: 4, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond})
		admitted(t, acquire(c, context.Background()), "first")
		w := acquire(c, context.Background())
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		pending(t, w, "waiter before the interval")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		refused(t, w, ErrQueueDelay, "waiter at the interval")
		if s := c.Stats(); s.Queued != 0 {
			t.Fatalf("%d still queued after the refusal", s.Queued)
		}
	})
}

// TestAStandingQueueRefusesPastTheTargetAndServesTheNewest: once the queue has not
// emptied for an interval, a new waiter waits at most the target, the oldest waiters
// are refused when the next one comes, and a free slot goes to the newest.
func TestAStandingQueueRefusesPastTheTargetAndServesTheNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 1, Queue: 8, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond})
		ctx := context.Background()
		first := admitted(t, acquire(c, ctx), "first")
		old := acquire(c, ctx)
		time.Sleep(60 * time.Millisecond)
		older := acquire(c, ctx) // queued 60 ms later: the queue has not emptied
		time.Sleep(50 * time.Millisecond)
		// 110 ms without an empty queue: standing. The first waiter is past its wait
		// (its timer fired at 100 ms); the next arrival turns away whoever waited
		// beyond the target, and waits at most the target itself.
		refused(t, old, ErrQueueDelay, "first waiter")
		late := acquire(c, ctx)
		refused(t, older, ErrQueueDelay, "a waiter past the target when the queue stands")
		pending(t, late, "the newest")
		time.Sleep(2 * time.Millisecond)
		newest := acquire(c, ctx)
		first.Release()
		synctest.Wait()
		n := admitted(t, newest, "the newest waiter of a standing queue (LIFO)")
		pending(t, late, "an older waiter")
		time.Sleep(3 * time.Millisecond)
		synctest.Wait()
		refused(t, late, ErrQueueDelay, "an older waiter at the target")
		n.Release()
	})
}

// TestLeaveAndCancel: Leave gives the slot back to the next waiter; a waiter whose
// context ends leaves the queue with the context's error.
func TestLeaveAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 1, Queue: 4})
		first := admitted(t, acquire(c, context.Background()), "first")
		ctx, cancel := context.WithCancel(context.Background())
		gone := acquire(c, ctx)
		next := acquire(c, context.Background())
		cancel()
		synctest.Wait()
		refused(t, gone, context.Canceled, "a waiter whose client went")
		first.Leave()
		synctest.Wait()
		n := admitted(t, next, "the waiter after a Leave")
		first.Release() // after Leave: nothing more
		if s := c.Stats(); s.InFlight != 1 || s.Queued != 0 {
			t.Fatalf("stats %+v, want 1 in flight, none queued", s)
		}
		n.Release()
	})
}

// TestNoQueue: with a negative queue, beyond the limit is refused at once.
func TestNoQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 1, Queue: -1})
		admitted(t, acquire(c, context.Background()), "first")
		refused(t, acquire(c, context.Background()), ErrQueueFull, "second")
	})
}

// TestAdaptiveLimit: the limit grows while requests at the limit stay fast, and
// shrinks, not below the floor, when they become slow.
func TestAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 16, MinLimit: 2, Queue: 64, Adaptive: true})
		c.limit = 4
		// serve runs n requests at once, each taking d.
		serve := func(n int, d time.Duration) {
			ts := make([]*Ticket, 0, n)
			chs := make([]chan result, n)
			for i := range n {
				chs[i] = acquire(c, context.Background())
			}
			time.Sleep(d)
			for i := range n {
				select {
				case r := <-chs[i]:
					if r.err == nil {
						ts = append(ts, r.t)
					}
				default:
				}
			}
			for _, tk := range ts {
				tk.Release()
			}
			synctest.Wait()
			// Whoever got a slot from those releases is done at once.
			for i := range n {
				select {
				case r := <-chs[i]:
					if r.err == nil {
						r.t.Release()
					}
				default:
				}
			}
		}
		for range 20 {
			serve(c.Stats().Limit, 10*time.Millisecond)
		}
		grown := c.Stats().Limit
		if grown <= 4 {
			t.Fatalf("limit %d after fast requests at the limit, want above 4", grown)
		}
		for range 5 {
			serve(c.Stats().Limit, 100*time.Millisecond)
		}
		if l := c.Stats().Limit; l >= grown || l < 2 {
			t.Fatalf("limit %d after slow requests (was %d), want lower, not below 2", l, grown)
		}
		for range 10 { // within the window that remembers the fast requests
			serve(c.Stats().Limit, 500*time.Millisecond)
		}
		if l := c.Stats().Limit; l != 2 {
			t.Fatalf("limit %d after very slow requests, want the floor 2", l)
		}
	})
}

// Refusing is true only while every slot is taken and the queue is full or standing.
func TestRefusingWhenSlotsAndQueueAreTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Config{Limit: 1, Queue: 1, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond})
		if c.Refusing() {
			t.Fatal("refusing with a free slot")
		}
		first := admitted(t, acquire(c, context.Background()), "first")
		if c.Refusing() {
			t.Fatal("refusing with room in the queue")
		}
		second := acquire(c, context.Background())
		pending(t, second, "second")
		if !c.Refusing() {
			t.Fatal("not refusing with the slot and the queue taken")
		}
		first.Release()
		synctest.Wait()
		admitted(t, second, "second").Release()
		if c.Refusing() {
			t.Fatal("refusing once everything was given back")
		}
	})
}
