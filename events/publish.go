package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExecutionUpdate is one state change of an execution: the execution as it now is
// and its version (how many changes it has had), which makes the message id.
type ExecutionUpdate struct {
	Execution Execution
	Version   int
}

// publishAckTimeout bounds the wait for JetStream's acknowledgements of updates.
const publishAckTimeout = 5 * time.Second

// PublishExecutionUpdates publishes one ExecutionUpdatedEvent per update on the
// EXECUTIONS stream, with Nats-Msg-Id <execution id>.<version>, and waits a few
// seconds for the acknowledgements. It returns how many were acknowledged and why the
// others were not. The database is authoritative: a caller logs what was not
// published, and a waiting request reads the execution again when its wait ends.
func PublishExecutionUpdates(ctx context.Context, js jetstream.JetStream, subjects Subjects, updates ...ExecutionUpdate) (int, error) {
	if js == nil || len(updates) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishAckTimeout)
	defer cancel()
	var errs []error
	futures := make([]jetstream.PubAckFuture, 0, len(updates))
	for _, u := range updates {
		id := u.Execution.ID
		data, err := json.Marshal(ExecutionUpdatedEvent{Header: NewHeader(TypeExecutionUpdatedEvent), Execution: u.Execution})
		if err != nil {
			errs = append(errs, fmt.Errorf("encode the update of %s: %w", id, err))
			continue
		}
		msg := nats.NewMsg(subjects.Of(ActionsUpdated, id))
		msg.Data = data
		f, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(id+"."+strconv.Itoa(u.Version)))
		if err != nil {
			errs = append(errs, fmt.Errorf("publish the update of %s: %w", id, err))
			continue
		}
		futures = append(futures, f)
	}
	acked := 0
	for _, f := range futures {
		select {
		case <-f.Ok():
			acked++
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("%s not stored: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return acked, errors.Join(append(errs, fmt.Errorf("%d updates not acknowledged in time", len(futures)-acked))...)
		}
	}
	return acked, errors.Join(errs...)
}

// AnnounceProactiveChange publishes a proactive event's change on ProactiveChanged:
// core NATS, best effort, after the change is committed. It only wakes the callback
// dispatcher and the server-sent event streams early.
func AnnounceProactiveChange(nc *nats.Conn, subjects Subjects, ev ProactiveEventChanged) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return nc.Publish(subjects.Of(ProactiveChanged), b)
}
