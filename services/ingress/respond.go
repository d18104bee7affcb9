package ingress

import (
	"context"
	"encoding/json"
	"errors"
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

// StatusClientClosedRequest is the status the access log and the metrics give a
// request whose client went away before its answer (nginx's 499): no answer is
// written, and it is neither a server error nor logged as one.
const StatusClientClosedRequest = 499

func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(r) {
		// The status only reaches the access log and the metrics: the connection is
		// closed, and nothing is written to it.
		w.WriteHeader(StatusClientClosedRequest)
		return
	}
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

// clientGone reports whether the client closed the connection: net/http cancels the
// request's context then (the server's base context never ends, and a deadline the
// ingress sets is a timeout, not this). Whatever err is, it follows from that.
func clientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled)
}
