package ingress

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/dexbridge/dexbridge/internal/locale"
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

// language is the reader's locale, negotiated from Accept-Language (English when
// nothing fits).
func language(r *http.Request) string {
	return locale.Negotiate(strings.Join(r.Header.Values("Accept-Language"), ","))
}

// contentLanguage says which language an answer's employee-facing texts are in; the
// answer depends on Accept-Language, which caches must know. Problems are English
// and do not carry it.
func contentLanguage(w http.ResponseWriter, loc string) {
	w.Header().Set("Content-Language", loc)
	w.Header().Add("Vary", "Accept-Language")
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
