// Package topics is the topic manager: it answers the topic catalogue on NATS (and,
// as the project grows, diagnoses devices against a topic's queries and rules).
package topics

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// Options are the service's dependencies.
type Options struct {
	Conn            *nats.Conn
	Subjects        events.Subjects
	Catalog         *topic.Catalog
	Concurrency     int
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	Version         string
	Metrics         *metrics.Metrics
}

// Service answers topic requests. Replicas join one queue group.
type Service struct {
	opts    Options
	catalog atomic.Pointer[topic.Catalog]
}

// New returns the service; Run starts it.
func New(o Options) *Service {
	s := &Service{opts: o}
	s.catalog.Store(o.Catalog)
	return s
}

// SetCatalog swaps in a new, already validated catalog.
func (s *Service) SetCatalog(c *topic.Catalog) { s.catalog.Store(c) }

// Run serves until ctx ends, then lets in-flight requests finish.
func (s *Service) Run(ctx context.Context) error {
	srv, err := natsrpc.NewServer(s.opts.Conn, "topics", s.opts.Version, "topic catalogue and diagnosis", s.opts.Concurrency, s.opts.Log,
		natsrpc.WithMetrics(s.opts.Metrics))
	if err != nil {
		return err
	}
	subj := s.opts.Subjects
	err = natsrpc.Endpoint(srv, "list", subj.Of(events.TopicsList), events.TypeTopicsListRequest,
		func(_ context.Context, req events.TopicsListRequest) (events.TopicsListReply, error) {
			return list(s.catalog.Load(), req), nil
		})
	if err == nil {
		err = natsrpc.Endpoint(srv, "get", subj.Of(events.TopicsGet), events.TypeTopicsGetRequest,
			func(_ context.Context, req events.TopicsGetRequest) (events.TopicsGetReply, error) {
				return get(s.catalog.Load(), req)
			})
	}
	if err != nil {
		_ = srv.Stop(ctx)
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	return srv.Stop(stopCtx)
}
