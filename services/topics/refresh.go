package topics

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Actions runs remote actions: the remoteactions service's NATS contract
// (req.actions.trigger, req.actions.get).
type Actions interface {
	Trigger(ctx context.Context, req events.ActionsTriggerRequest) (events.Execution, error)
	Get(ctx context.Context, id string) (events.Execution, error)
}

// refresher runs a topic's data-collection remote actions on a device and waits,
// within a bound, for them to finish, so that the queries that follow read what they
// just collected.
type refresher struct {
	actions  Actions
	updates  *nats.Conn // carries the executions' updates (evt.actions.updated.<id>)
	subjects events.Subjects
	bound    time.Duration // how long a refresh may wait for its executions
	poll     time.Duration // how often an execution is asked for when no update comes
}

// collect triggers every data-collection action of p on dev at once and waits until
// each is final, waits for a device that is not there (presence is the device's, in
// case the trigger's answer does not say), or the bound has passed; it returns the
// executions as they then are (some may still be running or waiting). A trigger
// refused is the answer: the chatbot asked for fresh data, which cannot be had.
func (r *refresher) collect(ctx context.Context, p *topic.Program, dev wrapper.Device, diagnosisID, presence string) ([]events.Execution, error) {
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
			// Until final, waiting for an absent device, or the bound: from its updates
			// and, when none comes, by asking for it every poll interval.
			if ex.Device.Presence == "" {
				ex.Device.Presence = presence
				if dev.LastSeen != nil {
					seen := dev.LastSeen.UTC()
					ex.Device.LastSeen = &seen
				}
			}
			execs[k] = events.AwaitExecution(bounded, r.updates, r.subjects, ex, r.actions.Get,
				events.AwaitOptions{Poll: r.poll, UntilDeviceAway: true})
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
