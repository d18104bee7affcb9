package ingress

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dexbridge/dexbridge/internal/admission"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// refusedBody is the problem an admission refusal answers, built once: refusing must
// cost next to nothing, or refusals take the CPU the admitted requests need.
var refusedBody = func() []byte {
	d := problem.New(problem.ServiceUnavailable, "the ingress is serving as many requests as it may: retry in a second").Doc()
	d.RetryAfter = 1
	b, _ := json.Marshal(d)
	return b
}()

var refusedLength = strconv.Itoa(len(refusedBody))

// unadmitted are the paths served without admission: probes and metrics must answer
// when the API is overloaded, which is when they matter.
var unadmitted = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// admit runs each API request under the admission controller (internal/admission),
// before anything costly (authentication, the limiters, the body, NATS): beyond its
// limit and short queue a request is answered 503 with Retry-After at once. A request
// that goes on to wait long (a long poll, an event stream, a refresh, an export: those
// extend their write deadline) gives its slot back then, so that waiting does not
// count as work; what it waits on has its own bounds.
func admit(c *admission.Controller, m *metrics.Metrics) middleware {
	if c == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	m.WatchAdmission(func() (inFlight, queued, limit int) {
		s := c.Stats()
		return s.InFlight, s.Queued, s.Limit
	})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if unadmitted[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			t, err := c.Acquire(r.Context())
			if err != nil {
				reason := "queue_delay"
				switch {
				case errors.Is(err, admission.ErrQueueFull):
					reason = "queue_full"
				case r.Context().Err() != nil:
					reason = "client_gone"
				}
				m.AdmissionRefused(reason)
				refuse(w)
				return
			}
			defer t.Release()
			m.Admitted(t.Waited())
			next.ServeHTTP(&admittedWriter{ResponseWriter: w, ticket: t}, r)
		})
	}
}

// refuse answers an admission refusal: 503, Retry-After and the problem, no log line
// (a storm would fill the log; the metrics count refusals).
func refuse(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{problem.ContentType}
	h["Content-Length"] = []string{refusedLength}
	h["Retry-After"] = []string{"1"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(refusedBody)
}

// admittedWriter notices a handler extending its write deadline, the sign of a long
// wait, and gives the request's admission slot back then.
type admittedWriter struct {
	http.ResponseWriter
	ticket *admission.Ticket
}

func (a *admittedWriter) SetWriteDeadline(t time.Time) error {
	a.ticket.Leave()
	return http.NewResponseController(a.ResponseWriter).SetWriteDeadline(t)
}

// Unwrap lets http.ResponseController reach the connection (flush, read deadline).
func (a *admittedWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }
