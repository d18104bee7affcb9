package ingress

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// executeQuery answers POST /api/v1/nql/{query_id}, body
// {"parameters": {"device_name": "..."}, "instance": "eu"}: a saved query through the
// NQL wrapper, from the cache or live.
func (h *handlers) executeQuery(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["query_id"]
	if !strings.HasPrefix(id, "#") {
		id = "#" + id
	}
	// In a URL path the leading # is sent as %23, or left out.
	if !events.ValidQueryID(id) {
		h.fail(w, r, problem.InvalidField("query_id", "a saved query id is # and 2 to 255 characters of a-z, 0-9 and _ (send # as %%23, or leave it out)"))
		return
	}
	var body struct {
		Parameters map[string]string `json:"parameters"`
		Instance   string            `json:"instance"`
	}
	if err := decodeJSON(w, r, &body, true); err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.NQLRequest{Header: events.NewHeader(events.TypeNQLRequest), QueryID: id, Parameters: body.Parameters, Instance: body.Instance}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.NQLReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.NQLExecute), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	if reply.Rows == nil {
		reply.Rows = []map[string]any{}
	}
	if reply.Headers == nil {
		reply.Headers = []string{}
	}
	writeJSON(w, http.StatusOK, api.QueryResult{DataAsOf: reply.DataAsOf, Headers: reply.Headers, Instance: reply.Instance,
		QueryID: reply.QueryID, Rows: reply.Rows, Source: reply.Source})
}
