package remoteactions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/store"
)

// EnsureStream creates the EXECUTIONS stream, or updates it: every state change of
// every execution, as evt.actions.updated.<execution id>. Waiting HTTP requests
// listen on their execution's subject (any replica of the ingress receives the
// messages); the stream keeps the changes for an hour, deduplicated by Nats-Msg-Id
// (<execution id>.<version>), for consumers that join late.
func EnsureStream(ctx context.Context, js jetstream.JetStream, subjects events.Subjects) (jetstream.Stream, error) {
	s, err := broker.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        subjects.Stream(events.StreamExecutions),
		Description: "state changes of remote-action executions",
		Subjects:    []string{subjects.Of(events.ActionsUpdated, ">")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      time.Hour,
		MaxBytes:    256 << 20,
		Duplicates:  2 * time.Minute,
		Replicas:    1,
	})
	if err != nil {
		return nil, fmt.Errorf("executions stream: %w", err)
	}
	return s, nil
}

// Publisher publishes execution changes on the EXECUTIONS stream. The database is
// authoritative: a change that cannot be published is logged, and a waiting request
// reads the execution again when its wait ends.
type Publisher struct {
	JS       jetstream.JetStream
	Subjects events.Subjects
	Log      *slog.Logger
	// Timeout bounds the wait for JetStream's acknowledgements (default 5 s).
	Timeout time.Duration
}

// Publish sends one event per execution and waits for the acknowledgements. It
// returns how many were acknowledged.
func (p *Publisher) Publish(ctx context.Context, execs ...store.Execution) int {
	if p == nil || p.JS == nil || len(execs) == 0 {
		return 0
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(execs))
	for _, e := range execs {
		ev := events.ExecutionUpdatedEvent{Header: events.NewHeader(events.TypeExecutionUpdatedEvent), Execution: Wire(e)}
		data, err := json.Marshal(ev)
		if err != nil {
			p.Log.Error("encoding an execution event failed", "execution_id", e.ID, "err", err)
			continue
		}
		msg := nats.NewMsg(p.Subjects.Of(events.ActionsUpdated, e.ID))
		msg.Data = data
		f, err := p.JS.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID+"."+strconv.Itoa(e.Version)))
		if err != nil {
			p.Log.Warn("publishing an execution event failed", "execution_id", e.ID, "err", err)
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
			p.Log.Warn("execution event not stored", "subject", f.Msg().Subject, "err", err)
		case <-ctx.Done():
			p.Log.Warn("execution events not acknowledged in time", "pending", len(futures)-acked)
			return acked
		}
	}
	return acked
}

// Wire is the execution as the API and the events show it. Triggering, dexbridge's
// own state before Nexthink answers, reads as pending.
func Wire(e store.Execution) events.Execution {
	status := e.Status
	if status == store.ExecTriggering {
		status = events.StatusPending
	}
	return events.Execution{
		ID: e.ID, RequestID: e.RequestID, RemoteAction: e.RemoteAction,
		Device: events.ExecutionDevice{Name: e.DeviceName, CollectorUID: e.CollectorUID, Instance: e.Instance},
		Params: e.Params, Status: status, StatusDetails: e.StatusDetails, Outputs: e.Outputs,
		Reason: e.Reason, ExternalReference: e.ExternalReference, Topic: e.Topic, Remediation: e.Remediation,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ExpiresAt: e.ExpiresAt.UTC(),
	}
}
