package topics

import (
	"context"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
)

// The remoteactions service, over NATS, runs a refresh's data collection.

// natsActions is the remoteactions service's contract.
type natsActions struct {
	rpc  *natsrpc.Client
	subj events.Subjects
}

func (a natsActions) Trigger(ctx context.Context, req events.ActionsTriggerRequest) (events.Execution, error) {
	var reply events.ExecutionReply
	if err := a.rpc.Call(ctx, a.subj.Of(events.ActionsTrigger), req, &reply); err != nil {
		return events.Execution{}, err
	}
	return reply.Execution, nil
}

func (a natsActions) Get(ctx context.Context, id string) (events.Execution, error) {
	var reply events.ExecutionReply
	req := events.ActionsGetRequest{Header: events.NewHeader(events.TypeActionsGetRequest), ID: id}
	if err := a.rpc.Call(ctx, a.subj.Of(events.ActionsGet), req, &reply, natsrpc.Idempotent); err != nil {
		return events.Execution{}, err
	}
	return reply.Execution, nil
}
