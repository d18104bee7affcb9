// Package natsrpc is typed request-reply over NATS: workers register handlers as
// endpoints of a nats.go micro service (queue group, discovery, stats and ping for
// free); the ingress calls them with Client. Errors travel as problem documents, so a
// worker's 404 is the chatbot's 404. While a worker works on a request it sends the
// caller progress messages (HeaderProgress, HeaderStatus), so the caller tells a slow
// worker from one that died with the request, and sends an idempotent request again.
package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// HeaderDeadline carries the caller's deadline (Unix milliseconds), so a worker stops
// working for a caller that has given up.
const HeaderDeadline = "Dexbridge-Deadline"

// Server is one micro service: a named set of endpoints sharing a bounded pool.
type Server struct {
	nc      *nats.Conn
	svc     micro.Service
	pool    *Pool
	log     *slog.Logger
	metrics *metrics.Metrics
	// streams are the running streams (StreamEndpoint); stopStreams ends them when
	// Stop's time is up.
	streams     sync.WaitGroup
	streamCtx   context.Context
	stopStreams context.CancelFunc
}

// ServerOption adjusts a Server.
type ServerOption func(*Server)

// WithMetrics records how long handlers take, by subject and outcome.
func WithMetrics(m *metrics.Metrics) ServerOption {
	return func(s *Server) { s.metrics = m }
}

// NewServer registers a micro service named name. Replicas share its queue group, so
// each request goes to one of them. concurrency bounds the handlers running at once:
// micro calls a handler one message at a time, and a handler that waits on the tenant
// must not serialise the rest.
func NewServer(nc *nats.Conn, name, version, description string, concurrency int, log *slog.Logger, opts ...ServerOption) (*Server, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        name,
		Version:     version,
		Description: description,
		QueueGroup:  name,
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			log.Error("nats service error", "service", name, "subject", e.Subject, "err", e.Description)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("add nats service %s: %w", name, err)
	}
	s := &Server{nc: nc, svc: svc, pool: NewPool(concurrency), log: log.With("service", name)}
	s.streamCtx, s.stopStreams = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Handler answers one request.
type Handler[Req events.Message, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Endpoint registers h on subject. reqType is the type token the request must carry.
func Endpoint[Req events.Message, Resp any](s *Server, name, subject, reqType string, h Handler[Req, Resp]) error {
	return addEndpoint(s, name, subject, reqType, h)
}

func addEndpoint[Req events.Message, Resp any](s *Server, name, subject, reqType string, h Handler[Req, Resp], opts ...micro.EndpointOpt) error {
	return s.svc.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) {
		ctx, cancel := requestContext(r.Headers())
		stopProgress := s.progress(r)
		s.pool.Go(func() {
			defer cancel()
			defer stopProgress()
			s.serve(ctx, r, func(ctx context.Context) (any, error) {
				var req Req
				if err := json.Unmarshal(r.Data(), &req); err != nil {
					return nil, problem.Wrap(problem.Invalid, err, "malformed request message")
				}
				if got := req.MessageHeader().Type; got != reqType {
					return nil, problem.New(problem.Invalid, "message type %q, want %q", got, reqType)
				}
				return h(ctx, req)
			})
		})
	}), append([]micro.EndpointOpt{micro.WithEndpointSubject(subject)}, opts...)...)
}

func (s *Server) serve(ctx context.Context, r micro.Request, call func(context.Context) (any, error)) {
	start := time.Now()
	resp, err := func() (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
			}
		}()
		return call(ctx)
	}()
	if s.metrics != nil {
		outcome := "ok"
		if err != nil {
			outcome = string(problem.CodeOf(err))
		}
		s.metrics.NATSHandlerDuration.WithLabelValues(r.Subject(), outcome).Observe(time.Since(start).Seconds())
	}
	// The logger with the subject is made only for a line to write: slog's With
	// formats its attributes at once, and most requests log nothing.
	log := func() *slog.Logger { return s.log.With("subject", r.Subject()) }
	if err != nil {
		p := problem.From(err)
		if p.Code == problem.Internal {
			log().ErrorContext(ctx, "request failed", "err", err, "duration_ms", time.Since(start).Milliseconds())
		} else if s.log.Enabled(ctx, slog.LevelDebug) {
			log().DebugContext(ctx, "request refused", "code", p.Code, "err", err)
		}
		doc, _ := json.Marshal(p.Doc())
		// The error headers of micro's Error, sent with Respond: Error records the error
		// on the request for micro's stats after the handler has returned, which races
		// with micro reading it, since the handler hands the request to the pool.
		headers := micro.Headers{micro.ErrorHeader: {p.Code.Title()}, micro.ErrorCodeHeader: {string(p.Code)}}
		if rerr := r.Respond(doc, micro.WithHeaders(headers)); rerr != nil {
			log().WarnContext(ctx, "reply failed", "err", rerr)
		}
		return
	}
	if rerr := r.RespondJSON(resp); rerr != nil {
		log().WarnContext(ctx, "reply failed", "err", rerr)
	}
}

// Bounds of the progress interval a caller may ask for.
const (
	minProgress = 10 * time.Millisecond
	maxProgress = 10 * time.Second
)

// progress tells the caller, as HeaderProgress asks, that the request is still being
// worked on (or waits for a slot of the pool), until stop is called: a caller hearing
// nothing for a while presumes this worker dead and may send the request elsewhere.
func (s *Server) progress(r micro.Request) (stop func()) {
	ms, err := strconv.ParseInt(r.Headers().Get(HeaderProgress), 10, 64)
	reply := r.Reply()
	if err != nil || reply == "" {
		return func() {}
	}
	every := min(max(time.Duration(ms)*time.Millisecond, minProgress), maxProgress)
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		done := stopped
		mu.Unlock()
		if done {
			return
		}
		m := nats.NewMsg(reply)
		m.Header.Set(HeaderStatus, StatusWorking)
		if err := s.nc.PublishMsg(m); err != nil {
			s.log.Debug("progress not sent", "err", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(every)
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

func requestContext(h micro.Headers) (context.Context, context.CancelFunc) {
	ctx := context.Background()
	if id := h.Get(events.HeaderRequestID); requestid.Valid(id) {
		ctx = requestid.With(ctx, id)
	}
	if id := h.Get(events.HeaderAPIKeyID); id != "" {
		ctx = WithHeader(ctx, events.HeaderAPIKeyID, id)
	}
	if ms, err := strconv.ParseInt(h.Get(HeaderDeadline), 10, 64); err == nil {
		return context.WithDeadline(ctx, time.UnixMilli(ms))
	}
	return context.WithCancel(ctx)
}

// Stop stops taking requests, then waits (within ctx) for the running ones to answer.
// Streams still running when ctx ends are broken off, and waited for.
func (s *Server) Stop(ctx context.Context) error {
	err := s.svc.Stop()
	if werr := s.pool.Wait(ctx); werr != nil {
		err = errors.Join(err, werr)
	}
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.stopStreams()
		<-done
	}
	s.stopStreams()
	return err
}

// Stopped reports whether the service has stopped (Stop, or its connection closed).
func (s *Server) Stopped() bool { return s.svc.Stopped() }
