// Package remoteactions is the remote action manager: it triggers the allow-listed
// remote actions of config/remote_actions.yaml on devices through the Remote Actions
// API, and records every execution and every trigger asked of it.
//
// A trigger goes through, in order: the request's shape; its Idempotency-Key (a key
// already bound returns that execution, replayed, or 422 when it was used for another
// request: a key wins over what follows); the allow-list (403); the device, by name or collector UID, from the cache
// and then live (404); the remote action's declared inputs and platforms, from the
// tenant's details (cached per instance for DetailsTTL; the allow-list's declaration
// when the tenant cannot tell), 400 naming the input or 422 for the platform; then
// the execution is reserved in PostgreSQL with its key and its audit record, unless
// an execution of the same remote action with the same params is still active on the
// device and the request does not say force: that one is the answer (existing), and
// the key is bound to it; a partial unique index makes this hold across replicas and
// concurrent requests. Only then is the Remote Actions API called, with triggerInfo {externalSource
// "dexbridge", reason, externalReference (the caller's, else the HTTP request id)}.
// A trigger that certainly did not run releases its reservation; one whose outcome
// is unknown ends in failure and keeps its key, so no retry runs the action twice.
//
// The service answers at once: the wait for a final state happens at the ingress, on
// the execution's events (evt.actions.updated.<id>, stream EXECUTIONS), which the
// poller publishes for every change it sees.
package remoteactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/cursor"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/requestid"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// Config is the service's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// ExpiresIn is expiresInMinutes of every trigger (60 minutes to 7 days).
	ExpiresIn time.Duration
	// DetailsTTL is how long a remote action's details are kept per instance.
	DetailsTTL time.Duration
	// DiagnosisMaxAge is how recent the diagnosis behind a topic remediation must be.
	DiagnosisMaxAge time.Duration
	// OnlineWithin is how recently a device must have been seen to count as online
	// (presence.online_within): every execution answered carries its device's presence.
	OnlineWithin time.Duration
	// TriggerTimeout bounds one trigger's call to Nexthink, retries included.
	TriggerTimeout time.Duration
	// Patience is the instances' clients': a chatbot waits for a trigger.
	Patience        instances.Patience
	Concurrency     int
	ShutdownTimeout time.Duration
}

// ConfigFrom is the service's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	e := c.Executions
	return Config{ExpiresIn: e.ExpiresIn.D(), DetailsTTL: e.DetailsTTL.D(), DiagnosisMaxAge: e.DiagnosisMaxAge.D(), OnlineWithin: c.Presence.OnlineWithin.D(),
		TriggerTimeout: 20 * time.Second, Patience: instances.Interactive(),
		Concurrency: c.Workers.Concurrency, ShutdownTimeout: c.ShutdownTimeout.D()}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// Options are the service's dependencies.
type Options struct {
	Conn      *nats.Conn
	JS        jetstream.JetStream
	Subjects  events.Subjects
	Store     Store
	Instances *instances.Set
	Allowlist *allowlist.List
	Topics    *topic.Catalog
	// Load, when set, reads the allow-list and topics again on a reload (the admin
	// call every replica obeys, or SIGHUP); a set it refuses leaves the current one.
	Load func() (*allowlist.List, *topic.Catalog, error)
	// Live, when set, finds devices the cache does not know on the instances.
	Live *livedevices.Finder
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Version string
	Now     func() time.Time
}

// Service answers the remote-action requests. Replicas share a queue group.
type Service struct {
	o      Options
	m      *manager
	worker atomic.Pointer[string] // the micro service id, once running
}

// New returns the service; Run starts it.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Allowlist == nil || o.Topics == nil {
		return nil, errors.New("remoteactions: a store, the allow-list and the topics are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	log := o.Log.With("service", "remoteactions")
	m := &manager{
		store: o.Store, upstream: map[string]Upstream{}, details: newDetailsCache(o.DetailsTTL, o.Now), log: log, now: o.Now,
		cursors: &cursor.Keys{Purpose: cursorKeyPurpose},
		js:      o.JS, subjects: o.Subjects,
		expiresIn: o.ExpiresIn, diagnosisMaxAge: o.DiagnosisMaxAge, triggerTimeout: o.TriggerTimeout, onlineWithin: o.OnlineWithin,
		replayWait: o.TriggerTimeout + 5*time.Second,
	}
	if o.Instances != nil {
		for _, in := range o.Instances.List() {
			m.upstream[in.Name] = in.ClientWith(o.Patience)
		}
	}
	m.allow.Store(o.Allowlist)
	m.topics.Store(o.Topics)
	if o.Live != nil {
		m.live = func(ctx context.Context, key, value string) ([]events.Device, error) {
			devs, _, err := o.Live.Find(ctx, key, value)
			return devs, err
		}
	}
	return &Service{o: o, m: m}, nil
}

// SetConfig swaps in a new allow-list and topic catalogue, already validated (a
// reload); nil keeps the current one.
func (s *Service) SetConfig(allow *allowlist.List, topics *topic.Catalog) {
	if allow != nil {
		s.m.allow.Store(allow)
	}
	if topics != nil {
		s.m.topics.Store(topics)
	}
}

// Reload reads the allow-list and topics again and puts them in force, or refuses
// them with their problems and keeps those in force. by says who asked, for the log.
func (s *Service) Reload(by string) events.TopicsReloadReply {
	reply := events.TopicsReloadReply{Header: events.NewHeader(events.TypeTopicsReloadReply), Status: events.ReloadReloaded,
		Worker: "remoteactions", LoadedAt: time.Now().UTC()}
	if id := s.worker.Load(); id != nil {
		reply.Worker = "remoteactions " + *id
	}
	if s.o.Load == nil {
		return reply
	}
	allow, topics, err := s.o.Load()
	if err != nil {
		reply.Status, reply.Problems = events.ReloadRefused, topic.ProblemLines(err)
		s.o.Log.Warn("remote actions reload refused; the previous set stays in force", "requested_by", by, "err", err)
	} else {
		s.SetConfig(allow, topics)
		s.o.Log.Info("remote actions reloaded", "requested_by", by, "remote_actions", len(allow.List()), "topics", len(topics.List()))
	}
	reply.Topics = len(s.m.topics.Load().List())
	return reply
}

// caller reads who asked from the request's headers.
func caller(ctx context.Context) Caller {
	return Caller{APIKeyID: natsrpc.Header(ctx, events.HeaderAPIKeyID), HTTPRequestID: requestid.From(ctx)}
}

// reply is the answer of an execution request.
func (s *Service) reply(ctx context.Context, r result, err error) (events.ExecutionReply, error) {
	if err != nil {
		return events.ExecutionReply{}, err
	}
	return events.ExecutionReply{Header: events.NewHeader(events.TypeExecutionReply), Execution: s.m.answer(ctx, r), Replayed: r.replayed,
		Existing: r.existing}, nil
}

// Run serves until ctx ends, then lets in-flight triggers finish.
func (s *Service) Run(ctx context.Context) error {
	if s.o.JS != nil {
		if _, err := broker.EnsureStream(ctx, s.o.JS, events.ExecutionsStream(s.o.Subjects)); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started: not a failure
			}
			return fmt.Errorf("executions stream: %w", err)
		}
	}
	svc := natsrpc.Service{Name: "remoteactions", Version: s.o.Version, Description: "remote action triggers and executions",
		Concurrency: s.o.Concurrency, ShutdownTimeout: s.o.ShutdownTimeout, Log: s.o.Log, Metrics: s.o.Metrics}
	subj := s.o.Subjects
	return natsrpc.Serve(ctx, s.o.Conn, svc, func(srv *natsrpc.Server) error {
		id := srv.ID()
		s.worker.Store(&id)
		return errors.Join(
			natsrpc.Endpoint(srv, "list", subj.Of(events.ActionsList), events.TypeActionsListRequest,
				func(context.Context, events.ActionsListRequest) (events.ActionsListReply, error) {
					return s.m.list(), nil
				}),
			natsrpc.Endpoint(srv, "trigger", subj.Of(events.ActionsTrigger), events.TypeActionsTriggerRequest,
				func(ctx context.Context, req events.ActionsTriggerRequest) (events.ExecutionReply, error) {
					r, err := s.m.trigger(ctx, caller(ctx), req)
					return s.reply(ctx, r, err)
				}),
			natsrpc.Endpoint(srv, "remediate", subj.Of(events.ActionsRemediate), events.TypeActionsRemediateRequest,
				func(ctx context.Context, req events.ActionsRemediateRequest) (events.ExecutionReply, error) {
					r, err := s.m.remediate(ctx, caller(ctx), req)
					return s.reply(ctx, r, err)
				}),
			natsrpc.Endpoint(srv, "get", subj.Of(events.ActionsGet), events.TypeActionsGetRequest,
				func(ctx context.Context, req events.ActionsGetRequest) (events.ExecutionReply, error) {
					e, err := s.m.get(ctx, req.ID)
					return s.reply(ctx, result{execution: e}, err)
				}),
			natsrpc.Endpoint(srv, "executions", subj.Of(events.ExecutionsList), events.TypeExecutionsListRequest,
				func(ctx context.Context, req events.ExecutionsListRequest) (events.ExecutionsListReply, error) {
					return s.m.executions(ctx, req)
				}),
			// Every replica, not one of the queue group, answers a reload.
			natsrpc.BroadcastEndpoint(srv, "reload", subj.Of(events.TopicsReload), events.TypeTopicsReloadRequest,
				func(_ context.Context, req events.TopicsReloadRequest) (events.TopicsReloadReply, error) {
					return s.Reload(req.RequestedBy), nil
				}),
		)
	})
}
