package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// HeaderRequestID is the HTTP header a request id is read from and echoed in.
const HeaderRequestID = "X-Request-Id"

type middleware func(http.Handler) http.Handler

// chain applies middlewares so the first listed is the outermost.
func chain(h http.Handler, ms ...middleware) http.Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}

// requestIDs adopts a well-formed X-Request-Id or makes one, and echoes it.
func requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestid.Valid(id) {
			id = requestid.New()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(requestid.With(r.Context(), id)))
	})
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type routeKey struct{}

// routeTemplate records, from inside the router, which route matched; the access log
// and metrics label requests with the template, never the raw path.
func routeTemplate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if holder, ok := r.Context().Value(routeKey{}).(*string); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					*holder = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func accessLog(log *slog.Logger, m *metrics.Metrics) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			route := "unmatched"
			next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			m.ObserveHTTP(route, r.Method, rec.status, time.Since(start))
			level := slog.LevelInfo
			switch {
			case rec.status >= 500:
				level = slog.LevelWarn
			case rec.status == http.StatusTooManyRequests:
				// A noisy client would fill the log: its refusals are counted in the
				// metrics (per limit, and per API key) instead.
				level = slog.LevelDebug
			}
			// Asked first, and with typed attributes: a line per request must cost
			// nothing at a level that drops it, and little at one that writes it.
			if log.Enabled(r.Context(), level) {
				log.LogAttrs(r.Context(), level, "http request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", rec.status), slog.Int("bytes", rec.bytes), slog.Int64("duration_ms", time.Since(start).Milliseconds()))
			}
		})
	}
}

// recoverPanics turns a handler panic into a 500 problem and a log line, never a
// dropped connection or a stack trace in the response.
func recoverPanics(log *slog.Logger) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "handler panic", "err", fmt.Sprint(v), "stack", string(debug.Stack()))
					problem.Write(w, r, requestid.From(r.Context()), problem.New(problem.Internal, "an internal error occurred"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
