package topics

import (
	"context"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Actions runs remote actions: the remoteactions service's NATS contract
// (req.actions.trigger, req.actions.get and the evt.actions.updated.<id> events).
type Actions interface {
	Trigger(ctx context.Context, req events.ActionsTriggerRequest) (events.Execution, error)
	Get(ctx context.Context, id string) (events.Execution, error)
	// Watch delivers the updates of execution id until stop is called.
	Watch(ctx context.Context, id string) (updates <-chan events.Execution, stop func(), err error)
}

// refresher runs a topic's data-collection remote actions on a device and waits,
// within a bound, for them to finish, so that the queries that follow read what they
// just collected.
type refresher struct {
	actions Actions
	bound   time.Duration // how long a refresh may wait for its executions
	poll    time.Duration // how often an execution is asked for when no update comes
}

// collect triggers every data-collection action of p on dev at once and waits until
// each is final or the bound has passed; it returns the executions as they then are
// (some may still be running). A trigger refused is the answer: the chatbot asked
// for fresh data, which cannot be had.
func (r *refresher) collect(ctx context.Context, p *topic.Program, dev wrapper.Device, diagnosisID string) ([]events.Execution, error) {
	ids := p.DataCollection()
	execs := make([]events.Execution, len(ids))
	errs := make([]error, len(ids))
	bounded, cancel := context.WithTimeout(ctx, r.bound)
	defer cancel()
	var wg sync.WaitGroup
	for k, id := range ids {
		wg.Go(func() {
			ex, err := r.actions.Trigger(ctx, events.ActionsTriggerRequest{
				Header: events.NewHeader(events.TypeActionsTriggerRequest), RemoteAction: id, Device: dev.CollectorUID,
				Reason: "data collection for a diagnosis of topic " + p.ID(), ExternalReference: diagnosisID,
				IdempotencyKey: diagnosisID + ":" + id, Topic: p.ID(),
			})
			if err != nil {
				errs[k] = err
				return
			}
			execs[k] = r.wait(bounded, ex)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return execs, nil
}

// wait follows ex until it is final or ctx ends, from its update events and, when
// none comes, by asking for it every poll interval. It asks once right after
// subscribing, since an update may have been published before.
func (r *refresher) wait(ctx context.Context, ex events.Execution) events.Execution {
	if events.FinalStatus(ex.Status) {
		return ex
	}
	updates, stop, err := r.actions.Watch(ctx, ex.ID)
	if err == nil {
		defer stop()
	}
	newer := func(e events.Execution) {
		if e.ID == ex.ID && !e.UpdatedAt.Before(ex.UpdatedAt) {
			ex = e
		}
	}
	if cur, err := r.actions.Get(ctx, ex.ID); err == nil {
		newer(cur)
	}
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	for !events.FinalStatus(ex.Status) {
		select {
		case e := <-updates: // a nil channel (no watch) never delivers
			newer(e)
		case <-tick.C:
			if cur, err := r.actions.Get(ctx, ex.ID); err == nil {
				newer(cur)
			}
		case <-ctx.Done():
			return ex
		}
	}
	return ex
}
