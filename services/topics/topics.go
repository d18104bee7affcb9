// Package topics is the topic manager: it answers the topic catalogue, diagnoses a
// device against a topic's queries and rules, and serves saved queries through the
// NQL wrapper (internal/wrapper), all on NATS.
//
// A diagnosis resolves the device from the cache, with its cached fields, in one
// query (else live, on the instances that are up), optionally runs the topic's
// data-collection remote actions through the remoteactions service and waits for
// them within a bound (not for a device that is not there), runs the topic's queries
// through the wrapper (from the cache when it can answer, else live from the device's
// instance), dates every value (internal/freshness: the collection time of an
// output, the device's last_seen for its own data; the last known value of an output
// a newer collection hides), evaluates the rules, gives the verdict, records the
// diagnosis and answers it.
//
// The topics, the remote-action allow-list and the saved queries are loaded at
// start-up (a bad set stops the worker) and reloaded on request: a broadcast on
// cmd.topics.reload that every replica obeys, or Reload (SIGHUP). A bad set is
// refused with its problems and the previous one stays in force.
package topics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// refreshPoll is how often a refresh asks for an execution no update came for.
const refreshPoll = 2 * time.Second

// Config is the service's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// MaxAge is how old cached fields may be and still answer a query (cache.max_age,
	// else twice the discovery period).
	MaxAge time.Duration
	// RefreshTimeout bounds the wait for a refresh's data collection.
	RefreshTimeout time.Duration
	// OnlineWithin is how recently a device must have been seen to count as online
	// (presence.online_within): a refresh does not wait for a device that is not.
	OnlineWithin time.Duration
	// RequestTimeout bounds calls to the remoteactions service when the caller gave no
	// deadline.
	RequestTimeout  time.Duration
	Concurrency     int
	ShutdownTimeout time.Duration
	// Lookup is how a device the cache does not have is looked up live, as
	// identification does: a name the instances did not know a moment ago is answered
	// at once from the memory of unknown identifiers.
	Lookup livedevices.Tuning
	// MaxExports bounds the exports (req.nql.export streams) a replica runs at once
	// (DefaultMaxExports when not positive); one beyond is refused with 429, as each
	// may hold a download for minutes.
	MaxExports int
}

// DefaultMaxExports is Config.MaxExports unless a test says otherwise.
const DefaultMaxExports = 4

// ConfigFrom is the service's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{MaxAge: c.Cache.FreshFor(), RefreshTimeout: c.Diagnosis.RefreshTimeout.D(), OnlineWithin: c.Presence.OnlineWithin.D(),
		RequestTimeout: c.RequestTimeout.D(), Concurrency: c.Workers.Concurrency, MaxExports: DefaultMaxExports,
		ShutdownTimeout: c.ShutdownTimeout.D(), Lookup: livedevices.TuningFrom(c)}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// Options are the service's dependencies.
type Options struct {
	Conn     *nats.Conn
	Subjects events.Subjects
	// Load reads the topics, the allow-list and the saved queries (topic.Files.Load).
	// New calls it (a bad set is refused), and every reload does.
	Load func() (*topic.Set, error)
	// Instances are the Nexthink instances queries go to when the cache cannot answer,
	// each within its NQL rate limit.
	Instances []wrapper.Instance
	// Diagnoses records every diagnosis. Without it the worker serves the catalogue
	// only, and diagnoses and saved queries answer 503.
	Diagnoses Diagnoses
	// Executions, when set, marks the suggested remediations whose remote action is
	// still active on the device (in_progress).
	Executions ActiveExecutions
	// Cache resolves devices, with their cached fields, for diagnoses and saved
	// queries; required with Diagnoses. CacheLimiter, when set, is the cache's
	// deployment-wide budget (MAX_CACHE_REQUESTS_PER_SECOND) each resolution takes from.
	Cache        Cache
	CacheLimiter ratelimit.Limiter
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	Log     *slog.Logger
	Version string
	Metrics *metrics.Metrics
}

// Service answers topic requests. Replicas join one queue group; reloads reach all.
type Service struct {
	opts     Options
	defs     atomic.Pointer[topic.Set]
	reloadMu sync.Mutex // one reload at a time
	worker   atomic.Pointer[string]
	diag     *diagnoser // nil: catalogue only
	wrapper  *wrapper.Wrapper
}

// New loads the definitions and returns the service; Run starts it.
func New(o Options) (*Service, error) {
	if o.Load == nil {
		return nil, errors.New("topics: a definitions loader is required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	if o.MaxExports <= 0 {
		o.MaxExports = DefaultMaxExports
	}
	defs, err := o.Load()
	if err != nil {
		return nil, err
	}
	s := &Service{opts: o}
	s.defs.Store(defs)
	if o.Diagnoses == nil {
		return s, nil
	}
	if o.Cache == nil {
		return nil, errors.New("topics: diagnoses need the cache")
	}
	live := make([]livedevices.Instance, len(o.Instances))
	for i, in := range o.Instances {
		live[i] = livedevices.Instance{Name: in.Name, Live: in.Live}
	}
	devices := deviceResolver{cache: o.Cache, limiter: o.CacheLimiter, live: livedevices.New(o.Cache, live, livedevices.Tuned(o.Lookup, o.Cache), livedevices.Log(o.Log)), metrics: o.Metrics}
	rpc := natsrpc.NewClient(o.Conn, o.RequestTimeout).WithMetrics(o.Metrics)
	s.wrapper, err = wrapper.New(wrapper.Options{Instances: o.Instances, Resolver: devices, MaxAge: o.MaxAge, Log: o.Log, Metrics: o.Metrics})
	if err != nil {
		return nil, err
	}
	s.diag = &diagnoser{
		defs: s.defs.Load, devices: devices, wrapper: s.wrapper, store: o.Diagnoses, onlineWithin: o.OnlineWithin, now: time.Now, log: o.Log,
		refresher: &refresher{actions: natsActions{rpc: rpc, subj: o.Subjects}, updates: o.Conn, subjects: o.Subjects, bound: o.RefreshTimeout, poll: refreshPoll},
	}
	s.diag.executions = o.Executions
	return s, nil
}

// Definitions returns the set in force.
func (s *Service) Definitions() *topic.Set { return s.defs.Load() }

// Run serves until ctx ends, then lets in-flight requests finish.
func (s *Service) Run(ctx context.Context) error {
	svc := natsrpc.Service{Name: "topics", Version: s.opts.Version, Description: "topic catalogue, diagnosis and the NQL wrapper",
		Concurrency: s.opts.Concurrency, ShutdownTimeout: s.opts.ShutdownTimeout, Log: s.opts.Log, Metrics: s.opts.Metrics}
	subj := s.opts.Subjects
	return natsrpc.Serve(ctx, s.opts.Conn, svc, func(srv *natsrpc.Server) error {
		id := srv.ID()
		s.worker.Store(&id)
		return errors.Join(
			natsrpc.Endpoint(srv, "list", subj.Of(events.TopicsList), events.TypeTopicsListRequest,
				func(_ context.Context, req events.TopicsListRequest) (events.TopicsListReply, error) {
					return list(s.defs.Load().Catalog(), req), nil
				}),
			natsrpc.Endpoint(srv, "get", subj.Of(events.TopicsGet), events.TypeTopicsGetRequest,
				func(_ context.Context, req events.TopicsGetRequest) (events.TopicsGetReply, error) {
					if err := req.Validate(); err != nil {
						return events.TopicsGetReply{}, err
					}
					return get(s.defs.Load().Catalog(), req)
				}),
			natsrpc.Endpoint(srv, "diagnose", subj.Of(events.TopicsDiagnose), events.TypeDiagnoseRequest,
				func(ctx context.Context, req events.DiagnoseRequest) (events.DiagnoseReply, error) {
					if s.diag == nil {
						return events.DiagnoseReply{}, unavailable("diagnosis")
					}
					return s.diag.diagnose(ctx, req)
				}),
			natsrpc.Endpoint(srv, "nql", subj.Of(events.NQLExecute), events.TypeNQLRequest,
				func(ctx context.Context, req events.NQLRequest) (events.NQLReply, error) {
					if s.wrapper == nil {
						return events.NQLReply{}, unavailable("the NQL wrapper")
					}
					return execute(ctx, s.defs.Load(), s.wrapper, req)
				}),
			natsrpc.StreamEndpoint(srv, "nql_export", subj.Of(events.NQLExport), events.TypeNQLExportRequest, s.opts.MaxExports,
				func(ctx context.Context, req events.NQLExportRequest, out *natsrpc.StreamWriter) (any, error) {
					if s.wrapper == nil {
						return nil, unavailable("the NQL wrapper")
					}
					return export(ctx, s.defs.Load(), s.wrapper, req, out)
				}),
			natsrpc.BroadcastEndpoint(srv, "reload", subj.Of(events.TopicsReload), events.TypeTopicsReloadRequest,
				func(_ context.Context, req events.TopicsReloadRequest) (events.TopicsReloadReply, error) {
					return s.Reload(req.RequestedBy), nil
				}),
		)
	})
}

// Reload loads the definitions again and puts them in force, or refuses them with
// their problems and keeps the set in force. by says who asked, for the log.
func (s *Service) Reload(by string) events.TopicsReloadReply {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	reply := events.TopicsReloadReply{Header: events.NewHeader(events.TypeTopicsReloadReply), Status: events.ReloadReloaded}
	if id := s.worker.Load(); id != nil {
		reply.Worker = *id
	}
	defs, err := s.opts.Load()
	if err != nil {
		reply.Status, reply.Problems = events.ReloadRefused, topic.ProblemLines(err)
		s.opts.Log.Warn("topics reload refused; the previous set stays in force", "requested_by", by, "problems", len(reply.Problems), "err", err)
		defs = s.defs.Load()
	} else {
		s.defs.Store(defs)
		s.opts.Log.Info("topics reloaded", "requested_by", by, "topics", len(defs.Topics()), "queries", defs.QueryCount())
	}
	reply.Topics, reply.Queries, reply.LoadedAt = len(defs.Topics()), defs.QueryCount(), defs.LoadedAt()
	return reply
}
