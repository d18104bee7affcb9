package events

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// GetExecution reads an execution's current state (ActionsGet).
type GetExecution func(ctx context.Context, id string) (Execution, error)

// AwaitOptions say how long and for what an execution is awaited.
type AwaitOptions struct {
	// Wait bounds the wait; zero waits until ctx ends.
	Wait time.Duration
	// AnyChange ends the wait at the first change, not only at a final state.
	AnyChange bool
	// Poll, when positive, reads the execution this often, in case an update is missed.
	Poll time.Duration
	// UntilDeviceAway also ends the wait as soon as the execution waits for a device
	// that is not there (AwaitsAbsentDevice): it would wait until the device comes
	// back or the execution expires, hours later.
	UntilDeviceAway bool
}

// AwaitsAbsentDevice reports whether e cannot progress until its device comes back:
// the tenant says it is waiting for the device, or it is pending on a device known
// not to be online (e.Device.Presence offline or unknown).
func AwaitsAbsentDevice(e Execution) bool {
	switch e.Status {
	case StatusWaitingForDevice:
		return true
	case StatusPending:
		return e.Device.Presence == PresenceOffline || e.Device.Presence == PresenceUnknown
	}
	return false
}

// ExecutionWatch receives the updates of one execution (ActionsUpdated.<id>). They
// are JetStream messages, which a plain subscription receives too, on any replica.
type ExecutionWatch struct {
	sub     *nats.Subscription
	updates chan *nats.Msg
}

// WatchExecution subscribes to the updates of execution id; the subscription is in
// place on the server when it returns, so an update published after that is not
// missed.
func WatchExecution(ctx context.Context, nc *nats.Conn, subjects Subjects, id string) (*ExecutionWatch, error) {
	w := &ExecutionWatch{updates: make(chan *nats.Msg, 64)}
	sub, err := nc.ChanSubscribe(subjects.Of(ActionsUpdated, id), w.updates)
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = nc.FlushWithContext(fctx) // a round trip: the server has the subscription
		cancel()
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, problem.Wrap(problem.ServiceUnavailable, err, "the message bus is unavailable").Retry(time.Second)
	}
	w.sub = sub
	return w, nil
}

// Stop ends the subscription.
func (w *ExecutionWatch) Stop() {
	if w != nil {
		_ = w.sub.Unsubscribe()
	}
}

// Next follows e, from its updates and every o.Poll by reading it with get, until it
// is final (or, with o.AnyChange, until it changes; with o.UntilDeviceAway, until it
// waits for an absent device), ctx ends or o.Wait has passed,
// and returns the latest state known. When the wait passes without an answer it
// reads the execution once more: the database is authoritative and an update may
// have been lost. A nil watch follows e by polling only.
func (w *ExecutionWatch) Next(ctx context.Context, e Execution, get GetExecution, o AwaitOptions) Execution {
	if o.UntilDeviceAway && AwaitsAbsentDevice(e) {
		return e
	}
	var updates chan *nats.Msg // nil: never delivers
	if w != nil {
		updates = w.updates
	}
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if o.Wait > 0 {
		wctx, cancel = context.WithTimeout(ctx, o.Wait)
	}
	defer cancel()
	var poll <-chan time.Time
	if o.Poll > 0 {
		t := time.NewTicker(o.Poll)
		defer t.Stop()
		poll = t.C
	}
	// take adopts cur when it is e, no older; it reports whether the wait is over.
	take := func(cur Execution) bool {
		if cur.ID != e.ID || cur.UpdatedAt.Before(e.UpdatedAt) {
			return false
		}
		changed := cur.UpdatedAt.After(e.UpdatedAt) || cur.Status != e.Status
		e = keepPresence(cur, e)
		return FinalStatus(e.Status) || (changed && o.AnyChange) || (o.UntilDeviceAway && AwaitsAbsentDevice(e))
	}
	for {
		select {
		case msg := <-updates:
			var ev ExecutionUpdatedEvent
			if json.Unmarshal(msg.Data, &ev) == nil && take(ev.Execution) {
				return e
			}
			continue
		case <-poll:
			if cur, err := get(wctx, e.ID); err == nil && take(cur) {
				return e
			}
			continue
		case <-wctx.Done():
		}
		break
	}
	if ctx.Err() != nil {
		return e
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if cur, err := get(rctx, e.ID); err == nil && !cur.UpdatedAt.Before(e.UpdatedAt) {
		return keepPresence(cur, e)
	}
	return e
}

// keepPresence is cur with the device's last_seen and presence of prev when cur does
// not carry them (an update the poller published does not).
func keepPresence(cur, prev Execution) Execution {
	if cur.Device.Presence == "" && cur.Device.CollectorUID == prev.Device.CollectorUID {
		cur.Device.LastSeen, cur.Device.Presence = prev.Device.LastSeen, prev.Device.Presence
	}
	return cur
}

// AwaitExecution waits, as o says, for e to reach a final state: it subscribes to
// its updates, reads it once (an update may have come before the subscription), then
// follows it with Next. Without a bus (nc nil), or when the subscription fails and
// o.Poll is zero, it returns e as it is.
func AwaitExecution(ctx context.Context, nc *nats.Conn, subjects Subjects, e Execution, get GetExecution, o AwaitOptions) Execution {
	if FinalStatus(e.Status) || nc == nil || (o.UntilDeviceAway && AwaitsAbsentDevice(e)) {
		return e
	}
	w, err := WatchExecution(ctx, nc, subjects, e.ID)
	if err != nil && o.Poll <= 0 {
		return e
	}
	defer w.Stop()
	if cur, err := get(ctx, e.ID); err == nil && cur.ID == e.ID && !cur.UpdatedAt.Before(e.UpdatedAt) {
		e = keepPresence(cur, e)
	}
	if FinalStatus(e.Status) || (o.UntilDeviceAway && AwaitsAbsentDevice(e)) {
		return e
	}
	return w.Next(ctx, e, get, o)
}
