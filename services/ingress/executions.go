package ingress

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// executionListParams are the query parameters of the execution list; status may be
// given several times, the others once.
var executionListParams = []string{"device", "status", "since", "remote_action", "limit", "cursor"}

// executionQuery reads the query string of GET /api/v1/remote-actions/executions.
func executionQuery(q url.Values) (events.ExecutionsListRequest, error) {
	req := events.ExecutionsListRequest{Header: events.NewHeader(events.TypeExecutionsListRequest)}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(executionListParams, name) {
			field := name
			if field == "" {
				field = "(query)"
			}
			return req, problem.InvalidField(field, "unknown parameter %q: filter by %s", name, strings.Join(executionListParams, ", "))
		}
		if name != "status" && len(q[name]) != 1 {
			return req, problem.InvalidField(name, "give %s once", name)
		}
	}
	req.Device, req.RemoteAction, req.Cursor = q.Get("device"), q.Get("remote_action"), q.Get("cursor")
	if q.Has("device") && req.Device == "" {
		return req, problem.InvalidField("device", "a device name or collector UID, or leave device out")
	}
	if q.Has("cursor") && req.Cursor == "" {
		return req, events.InvalidCursor()
	}
	for _, v := range q["status"] {
		for s := range strings.SplitSeq(v, ",") {
			if err := events.CheckExecutionStatus(s); err != nil {
				return req, err
			}
			if !slices.Contains(req.Statuses, s) {
				req.Statuses = append(req.Statuses, s)
			}
		}
	}
	if v := q.Get("since"); q.Has("since") {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return req, problem.InvalidField("since", "want an RFC 3339 time such as 2026-05-04T09:00:00Z")
		}
		t = t.UTC()
		req.Since = &t
	}
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.MaxExecutionsPage {
			return req, problem.InvalidField("limit", "want 1 to %d", events.MaxExecutionsPage)
		}
		req.Limit = n
	}
	return req, req.Validate()
}

// listExecutions answers GET /api/v1/remote-actions/executions: a page of
// executions, newest first, from the remote action manager.
func (h *handlers) listExecutions(w http.ResponseWriter, r *http.Request) {
	req, err := executionQuery(r.URL.Query())
	if err == nil {
		err = h.delegateExecutions(r.Context(), req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.ExecutionsListReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.ExecutionsList), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	page := api.Executions{Executions: reply.Executions}
	if page.Executions == nil {
		page.Executions = []events.Execution{}
	}
	if reply.NextCursor != "" {
		page.NextCursor = &reply.NextCursor
	}
	writeJSON(w, http.StatusOK, page)
}
