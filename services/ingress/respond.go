package ingress

import (
	"encoding/json"
	"net/http"

	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

type handlers struct {
	opts Options
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.From(err)
	// A worker's failure was logged by the worker, with its cause.
	if p.Code == problem.Internal && !natsrpc.FromWorker(err) {
		h.opts.Log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	problem.Write(w, r, requestid.From(r.Context()), p)
}

func (h *handlers) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, problem.New(problem.NotFound, "no route %s %s", r.Method, r.URL.Path))
}
