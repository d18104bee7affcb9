package topics

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// execute answers a saved query through the wrapper: the NQL endpoint's logic.
func execute(ctx context.Context, defs *topic.Set, w *wrapper.Wrapper, req events.NQLRequest) (events.NQLReply, error) {
	if err := req.Validate(); err != nil {
		return events.NQLReply{}, err
	}
	q, ok := defs.Query(req.QueryID)
	if !ok {
		return events.NQLReply{}, problem.New(problem.NotFound, "no saved query %s", req.QueryID)
	}
	params := req.Parameters
	if params == nil {
		params = map[string]string{}
	}
	a, err := w.Run(ctx, q, wrapper.Request{Parameters: params, Instance: req.Instance})
	if err != nil {
		return events.NQLReply{}, err
	}
	asOf := a.DataAsOf.UTC()
	if a.Rows == nil {
		a.Rows = []map[string]any{}
	}
	return events.NQLReply{Header: events.NewHeader(events.TypeNQLReply), QueryID: q.ID, Headers: a.Headers, Rows: a.Rows,
		Source: a.Source, Instance: a.Instance, DataAsOf: &asOf}, nil
}

// unavailable is the answer of a worker built without what diagnosis needs.
func unavailable(what string) error {
	return problem.New(problem.ServiceUnavailable, "%s is not available on this topics worker", what).Retry(5 * time.Second)
}
