package remoteactions

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// executions answers a page of executions, newest first, and the cursor of the next
// page when there is one.
func (m *manager) executions(ctx context.Context, req events.ExecutionsListRequest) (events.ExecutionsListReply, error) {
	reply := events.ExecutionsListReply{Header: events.NewHeader(events.TypeExecutionsListReply), Executions: []events.Execution{}}
	if err := req.Validate(); err != nil {
		return reply, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = events.DefaultExecutionsPage
	}
	f := store.ExecutionFilter{Device: req.Device, IsUID: events.IsCollectorUID(req.Device), RemoteAction: req.RemoteAction, Limit: limit + 1}
	for _, s := range req.Statuses {
		f.Statuses = append(f.Statuses, s)
		if s == events.StatusPending { // dexbridge's own state before Nexthink answers reads as pending
			f.Statuses = append(f.Statuses, store.ExecTriggering)
		}
	}
	if req.Since != nil {
		f.Since = *req.Since
	}
	codec, err := m.cursors.Codec(ctx, m.store)
	if err != nil {
		return reply, problem.Wrap(problem.ServiceUnavailable, err, "executions cannot be listed right now").Retry(time.Second)
	}
	scope := cursorScope(req)
	if req.Cursor != "" {
		pos, ok := decodeCursor(codec, scope, req.Cursor)
		if !ok {
			return reply, events.InvalidCursor()
		}
		f.After = &pos
	}
	found, err := m.store.ListExecutions(ctx, f)
	if err != nil {
		return reply, problem.Wrap(problem.ServiceUnavailable, err, "executions cannot be read right now").Retry(time.Second)
	}
	if len(found) > limit {
		found = found[:limit]
		last := found[limit-1]
		if reply.NextCursor, err = encodeCursor(codec, scope, store.ExecutionPosition{CreatedAt: last.CreatedAt, ID: last.ID}); err != nil {
			return reply, problem.Wrap(problem.Internal, err, "the next page's cursor cannot be made")
		}
	}
	for _, e := range found {
		reply.Executions = append(reply.Executions, wire.Execution(e))
	}
	return reply, nil
}
