package natsrpc

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/metrics"
)

// Service describes a worker's micro service and how it stops.
type Service struct {
	Name        string
	Version     string // SemVer; "" is 0.0.0
	Description string
	// Concurrency bounds the handlers running at once per endpoint.
	Concurrency int
	// ShutdownTimeout is how long the running handlers get to answer once the
	// service stops taking requests.
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	// Metrics, when set, times the handlers.
	Metrics *metrics.Metrics
}

// Start registers the service on nc and lets register add its endpoints; when one
// cannot be added the service is stopped again.
func Start(nc *nats.Conn, svc Service, register func(*Server) error) (*Server, error) {
	version := svc.Version
	if version == "" {
		version = "0.0.0" // NATS micro wants a SemVer
	}
	log := svc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := NewServer(nc, svc.Name, version, svc.Description, svc.Concurrency, log, WithMetrics(svc.Metrics))
	if err != nil {
		return nil, err
	}
	if err := register(srv); err != nil {
		_ = srv.Stop(context.Background())
		return nil, err
	}
	return srv, nil
}

// Serve is the life of a worker's service: Start, serve until ctx ends, then stop
// taking requests and let the running ones answer within svc.ShutdownTimeout. It
// returns nil after a clean stop.
func Serve(ctx context.Context, nc *nats.Conn, svc Service, register func(*Server) error) error {
	srv, err := Start(nc, svc, register)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), svc.ShutdownTimeout)
	defer cancel()
	return srv.Stop(stopCtx)
}
