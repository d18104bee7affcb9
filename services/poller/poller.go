// Package poller follows remote-action executions to their final state. Every
// Interval (5 s by default), for each instance, it reads the instance's open executions and asks
// the instance about all of them in one NQL query (QueryID, `request_id in
// [$request_id_1, ... $request_id_250]`, one query per BatchSize executions), records
// every change with its history, expires those past their expiresInMinutes, and
// publishes one event per change on the EXECUTIONS stream
// (evt.actions.updated.<execution id>, Nats-Msg-Id <id>.<version>), which wakes the
// HTTP requests waiting on that execution on any replica of the ingress.
//
// Exactly one poller polls an instance at a time, however many replicas run: it holds
// the instance's lease (store.PollerLease, a PostgreSQL advisory lock on a connection
// of its own) and reads and writes through that connection. A replica that finds the
// lease taken tries again every LeaseRetry; when the holder stops or dies, its session
// ends, the lock goes with it, and another replica takes over at its next try.
package poller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Config is the poller's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// Interval is the poll period (executions.poll_interval,
	// REMOTE_ACTION_POLL_INTERVAL).
	Interval time.Duration
	// LeaseRetry is how often a replica without the lease tries to take it (zero: one
	// Interval): the longest an instance goes unpolled after its poller died.
	LeaseRetry time.Duration
	// ExpiryGrace is how long past its expiry an execution may stay open, so that the
	// tenant's own final state wins (zero: one Interval).
	ExpiryGrace time.Duration
	// StaleTriggering is how long an execution may stay in triggering (its process
	// died during the call to Nexthink) before it is failed.
	StaleTriggering time.Duration
}

// ConfigFrom is the poller's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{Interval: c.Executions.PollInterval.D(), StaleTriggering: 2 * time.Minute}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// Querier runs a saved query on one instance (nexthink.Client).
type Querier interface {
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
}

// Options are the poller's dependencies.
type Options struct {
	DB        *store.DB
	Instances *instances.Set
	// Queriers replace the instances' clients (tests, benchmarks); by instance name.
	Queriers map[string]Querier
	JS       jetstream.JetStream
	Subjects events.Subjects
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
	// Observe, when set, is told every tick of a lease holder (tests, benchmarks).
	Observe func(Tick)
}

// Tick is what one poll of one instance did.
type Tick struct {
	Instance string
	Open     int           // open executions asked about
	Queries  int           // NQL queries sent
	Failed   int           // queries that failed
	Changed  int           // executions whose state changed (expiries included)
	Expired  int           // of which expired by dexbridge
	Took     time.Duration //
}

// Service polls every configured instance.
type Service struct {
	o        Options
	log      *slog.Logger
	queriers map[string]Querier
	names    []string
}

// New returns the poller; Run starts it.
func New(o Options) *Service {
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	if o.LeaseRetry <= 0 {
		o.LeaseRetry = o.Interval
	}
	if o.ExpiryGrace <= 0 {
		o.ExpiryGrace = o.Interval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, log: o.Log.With("service", "poller"), queriers: o.Queriers}
	if s.queriers == nil {
		s.queriers = map[string]Querier{}
		if o.Instances != nil {
			for _, in := range o.Instances.List() {
				// A tick may wait up to one interval for the NQL budget and retry within it.
				s.queriers[in.Name] = in.Client.WithPolicy(o.Interval, o.Interval)
			}
		}
	}
	if o.Instances != nil {
		s.names = o.Instances.Names()
	} else {
		for name := range s.queriers {
			s.names = append(s.names, name)
		}
	}
	return s
}

// Run polls until ctx ends, then releases the leases it holds.
func (s *Service) Run(ctx context.Context) error {
	if s.o.JS != nil {
		if _, err := broker.EnsureStream(ctx, s.o.JS, events.ExecutionsStream(s.o.Subjects)); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started: not a failure
			}
			return fmt.Errorf("executions stream: %w", err)
		}
	}
	var wg sync.WaitGroup
	for _, name := range s.names {
		wg.Go(func() { s.follow(ctx, name) })
	}
	<-ctx.Done() // with no instance configured, there is nothing to poll until the end
	wg.Wait()
	return nil
}

// follow takes the lease of one instance whenever it is free and polls while it
// holds it, until ctx ends.
func (s *Service) follow(ctx context.Context, instance string) {
	log := s.log.With("instance", instance)
	for {
		lease, ok, err := s.o.DB.TryPollerLease(ctx, instance)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("taking the poller lease failed", "err", err)
		case ok:
			log.Info("polling executions")
			s.lead(ctx, lease, log)
			lease.Release(ctx)
			if ctx.Err() != nil {
				return
			}
			log.Warn("poller lease lost")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.o.LeaseRetry):
		}
	}
}

// lead polls while the lease holds.
func (s *Service) lead(ctx context.Context, lease *store.PollerLease, log *slog.Logger) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if err := lease.Alive(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("poller lease check failed", "err", err)
			}
			return
		}
		if err := s.tick(ctx, lease, log); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxOpen bounds one tick: 40 queries of BatchSize.
const maxOpen = 40 * BatchSize

// tick polls one instance once.
func (s *Service) tick(ctx context.Context, lease *store.PollerLease, log *slog.Logger) error {
	start := time.Now()
	instance := lease.Instance()
	stale, err := lease.FailStale(ctx, s.o.Now().Add(-s.o.StaleTriggering),
		"the trigger's outcome is unknown: dexbridge stopped while calling Nexthink; the action may run, check Nexthink before running it again")
	if err != nil {
		return err
	}
	open, err := lease.OpenExecutions(ctx, maxOpen)
	if err != nil {
		return err
	}
	tk := Tick{Instance: instance, Open: len(open)}
	var changes []store.ExecutionChange
	q := s.queriers[instance]
	for _, chunk := range Chunks(open) {
		ids := make([]string, len(chunk))
		for i, e := range chunk {
			ids[i] = e.RequestID
		}
		var rows []map[string]any
		if q != nil {
			tk.Queries++
			res, err := q.Execute(ctx, QueryID, Params(ids))
			if err != nil {
				tk.Failed++
				log.Warn("polling executions failed", "query_id", QueryID, "executions", len(chunk), "err", err)
			} else {
				rows = res.Rows
			}
		}
		changes = append(changes, Plan(chunk, rows, s.o.Now(), s.o.ExpiryGrace)...)
	}
	changed, err := lease.Apply(ctx, changes)
	if err != nil {
		return err
	}
	still := len(open)
	for _, e := range changed {
		if events.FinalStatus(e.Status) {
			still--
		}
		if e.Status == store.ExecExpired {
			tk.Expired++
		}
	}
	changed = append(changed, stale...)
	tk.Changed = len(changed)
	if _, err := events.PublishExecutionUpdates(ctx, s.o.JS, s.o.Subjects, wire.ExecutionUpdates(changed...)...); err != nil {
		log.Warn("execution changes not published", "err", err)
	}
	if s.o.Metrics != nil {
		s.o.Metrics.PendingExecutions.WithLabelValues(instance).Set(float64(still))
	}
	tk.Took = time.Since(start)
	if tk.Changed > 0 {
		log.Debug("executions polled", "open", tk.Open, "queries", tk.Queries, "changed", tk.Changed, "duration_ms", tk.Took.Milliseconds())
	}
	if s.o.Observe != nil {
		s.o.Observe(tk)
	}
	return nil
}
