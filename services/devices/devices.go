// Package devices is the identification worker: it answers which devices an employee
// uses (by user name, UPN, e-mail address or SID) and what a device is (by name or
// collector UID) from the cache that discovery fills, and, when the cache knows
// nothing of a well-formed identifier, asks the instances that are up, except those
// that did not know it a moment ago. Answers group a user's devices per person and
// say when the identifier matched several people. It also reports the instances'
// health, their discovery and the cache's size.
//
// Every cache read takes one call from the deployment-wide
// MAX_CACHE_REQUESTS_PER_SECOND budget, shared fairly among the API keys asking when
// it is short; beyond it the chatbot gets 429 with Retry-After. Live queries take the
// instance's NQL budget. The identifications that arrive while the worker's
// statements run are read together in the next one (batch.go).
package devices

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

// Config is the service's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// Refresh is CHATBOT_CACHE_REFRESH, to tell when the next discovery is due.
	Refresh time.Duration
	// Live is the patience of a live query: a chatbot waits for it.
	Live            instances.Patience
	Concurrency     int
	ShutdownTimeout time.Duration
	// OnlineWithin is presence.online_within: a device seen within it is online.
	OnlineWithin time.Duration
	// Lookup is how live look-ups go: USER_ACTIVITY_PERIOD leaves older activity out,
	// and an identifier the instances did not know is not asked again for
	// cache.unknown_identifier_ttl (the same for diagnoses and remote actions).
	Lookup livedevices.Tuning
}

// ConfigFrom is the service's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{Refresh: c.Cache.Refresh.D(), Live: instances.Interactive(), Concurrency: c.Workers.Concurrency,
		ShutdownTimeout: c.ShutdownTimeout.D(), OnlineWithin: c.Presence.OnlineWithin.D(),
		Lookup: livedevices.TuningFrom(c)}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// Options are the service's dependencies.
type Options struct {
	Conn     *nats.Conn
	Subjects events.Subjects
	Cache    Cache
	// Instances are asked live on a cache miss; their clients take each instance's
	// NQL budget.
	Instances *instances.Set
	// CacheLimiter is MAX_CACHE_REQUESTS_PER_SECOND, shared by every replica.
	CacheLimiter ratelimit.Limiter
	// Metrics, when set, counts cache hits and misses and times the handlers.
	Metrics *metrics.Metrics
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	Log     *slog.Logger
	Version string
}

// Service answers identification and status requests. Replicas share a queue group.
type Service struct {
	o Options
	s *identifierService
}

// New returns the service; Run starts it.
func New(o Options) (*Service, error) {
	if o.Cache == nil || o.CacheLimiter == nil || o.Instances == nil {
		return nil, errors.New("devices: a cache, its limiter and the instances are required")
	}
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var live []livedevices.Instance
	for _, in := range o.Instances.List() {
		live = append(live, livedevices.Instance{Name: in.Name, Live: in.ClientWith(o.Live)})
	}
	if o.Lookup.Period > livedevices.QueryWindow {
		o.Log.Warn("the saved identification queries select less than USER_ACTIVITY_PERIOD: widen their timeframe",
			"query_window", livedevices.QueryWindow.String(), "user_activity_period", o.Lookup.Period.String())
	}
	finder := livedevices.New(o.Cache, live, livedevices.Tuned(o.Lookup, o.Cache), livedevices.Log(o.Log))
	upstreams := map[string]string{}
	engines := map[string]engineLister{}
	for _, in := range o.Instances.List() {
		upstreams[in.Name] = in.Type
		if l, ok := in.Client.(engineLister); ok {
			engines[in.Name] = l
		}
	}
	s := &identifierService{cache: o.Cache, users: &userBatcher{cache: o.Cache}, limiter: o.CacheLimiter, live: finder, order: o.Instances.Names(),
		upstreams: upstreams, engines: engines, now: time.Now, onlineWithin: o.OnlineWithin, metrics: o.Metrics}
	return &Service{o: o, s: s}, nil
}

// Run serves until ctx ends, then lets in-flight requests finish.
func (s *Service) Run(ctx context.Context) error {
	svc := natsrpc.Service{Name: "devices", Version: s.o.Version, Description: "employee and device identification from the cache",
		Concurrency: s.o.Concurrency, ShutdownTimeout: s.o.ShutdownTimeout, Log: s.o.Log, Metrics: s.o.Metrics}
	subj := s.o.Subjects
	return natsrpc.Serve(ctx, s.o.Conn, svc, func(srv *natsrpc.Server) error {
		return errors.Join(
			natsrpc.Endpoint(srv, "identify", subj.Of(events.DevicesIdentify), events.TypeDevicesIdentifyRequest, s.s.identify),
			natsrpc.Endpoint(srv, "get", subj.Of(events.DevicesGet), events.TypeDevicesGetRequest, s.s.get),
			natsrpc.Endpoint(srv, "status", subj.Of(events.StatusGet), events.TypeStatusGetRequest,
				func(ctx context.Context, _ events.StatusGetRequest) (events.StatusGetReply, error) {
					return s.s.status(ctx, s.o.Refresh)
				}),
		)
	})
}
