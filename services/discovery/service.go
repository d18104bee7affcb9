// Package discovery keeps the cache fresh: per configured instance, every
// CHATBOT_CACHE_REFRESH (measured from the start of the previous run, whichever
// replica made it) and on demand, it exports the devices, users and user-device
// activity of the last USER_ACTIVITY_PERIOD from Nexthink, streams them into
// PostgreSQL staging tables with COPY and swaps the instance's cached rows in one
// transaction.
//
// Exactly one discovery of an instance runs at a time, however many replicas run:
// a run holds a PostgreSQL advisory lock (store.DiscoveryLease) on a dedicated
// connection from before it records itself until it has recorded its end, and a
// replica that finds the lock taken, or a run started less than a refresh period
// ago, does not start another.
package discovery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Options are the service's dependencies.
type Options struct {
	Discoverer *Discoverer
	DB         *store.DB
	Conn       *nats.Conn // serves DiscoveryRun; nil serves nothing (tests)
	Subjects   events.Subjects
	Refresh    time.Duration
	// Recheck is how long a replica that found a discovery running elsewhere waits
	// before it looks again (default 5 s, at most Refresh): when that replica dies
	// mid-run, another takes the lease and runs the discovery within it.
	Recheck         time.Duration
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	Version         string
	// Observe, when set, is told every scheduling decision (tests, metrics).
	Observe func(Decision)
}

// Decision is what a scheduler did when a run was due.
type Decision struct {
	Instance string
	// Action is ran; busy (running elsewhere); recent (a run started less than a
	// period ago); wait (the next run is due later, at Next); or error.
	Action  string
	Next    time.Time
	RunID   int64
	Outcome string
}

// Service schedules discoveries and starts them on request.
type Service struct {
	o   Options
	log *slog.Logger
	wg  sync.WaitGroup // runs started on request
}

// New returns the service; Run starts it.
func New(o Options) *Service {
	if o.Recheck <= 0 {
		o.Recheck = 5 * time.Second
	}
	o.Recheck = min(o.Recheck, o.Refresh)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: o.Log.With("service", "discovery")}
}

// Run schedules every instance and serves DiscoveryRun until ctx ends; then it stops
// taking requests and cancels the runs in flight (recorded as cancelled: the cache
// keeps its last good load).
func (s *Service) Run(ctx context.Context) error {
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	var srv *natsrpc.Server
	if s.o.Conn != nil {
		var err error
		svc := natsrpc.Service{Name: "discovery", Version: s.o.Version, Description: "discovery of the Nexthink instances into the cache",
			Concurrency: 4, Log: s.o.Log, Metrics: s.o.Discoverer.cfg.Metrics}
		srv, err = natsrpc.Start(s.o.Conn, svc, func(srv *natsrpc.Server) error {
			return natsrpc.Endpoint(srv, "run", s.o.Subjects.Of(events.DiscoveryRun), events.TypeDiscoveryRunRequest,
				func(ctx context.Context, req events.DiscoveryRunRequest) (events.DiscoveryRunReply, error) {
					return s.start(ctx, runCtx, req)
				})
		})
		if err != nil {
			return err
		}
	}
	for _, name := range s.o.Discoverer.cfg.Instances.Names() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.schedule(runCtx, name)
		}()
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(s.o.ShutdownTimeout, time.Second))
	defer cancel()
	var err error
	if srv != nil {
		err = srv.Stop(stopCtx)
	}
	cancelRuns()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-stopCtx.Done():
		err = errors.Join(err, errors.New("discovery runs still stopping"))
	}
	return err
}

// start begins a run of each requested instance and lets it go on in the background.
func (s *Service) start(ctx, runCtx context.Context, req events.DiscoveryRunRequest) (events.DiscoveryRunReply, error) {
	if err := req.Validate(); err != nil {
		return events.DiscoveryRunReply{}, err
	}
	names := s.o.Discoverer.cfg.Instances.Names()
	if req.Instance != "" {
		if _, ok := s.o.Discoverer.cfg.Instances.Get(req.Instance); !ok {
			return events.DiscoveryRunReply{}, problem.New(problem.NotFound, "no instance %q is configured", req.Instance)
		}
		names = []string{req.Instance}
	}
	reply := events.DiscoveryRunReply{Header: events.NewHeader(events.TypeDiscoveryRunReply), Runs: []events.DiscoveryRunStart{}}
	for _, name := range names {
		run, err := s.o.Discoverer.Begin(ctx, name, "api", true)
		switch {
		case errors.Is(err, ErrBusy):
			reply.Runs = append(reply.Runs, events.DiscoveryRunStart{Instance: name, Status: events.RunAlreadyRunning})
			continue
		case err != nil:
			return reply, err
		}
		s.log.InfoContext(ctx, "discovery requested", "instance", name, "run_id", run.ID(), "requested_by", req.RequestedBy)
		reply.Runs = append(reply.Runs, events.DiscoveryRunStart{Instance: name, Status: events.RunStarted, RunID: run.ID()})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, _ = run.Execute(runCtx)
		}()
	}
	return reply, nil
}

// schedule runs discoveries of one instance when they are due, until ctx ends.
func (s *Service) schedule(ctx context.Context, instance string) {
	log := s.log.With("instance", instance)
	for {
		wait, err := s.untilDue(ctx, instance)
		if err != nil {
			log.Warn("reading the last discovery failed", "err", err)
			wait = s.o.Recheck
		} else if wait > 0 {
			s.observe(Decision{Instance: instance, Action: "wait", Next: time.Now().Add(wait)})
		}
		if sleep(ctx, wait) != nil {
			return
		}
		run, err := s.o.Discoverer.Begin(ctx, instance, "schedule", false)
		var recent *RecentError
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrBusy):
			log.Debug("discovery running elsewhere")
			s.observe(Decision{Instance: instance, Action: "busy"})
			if sleep(ctx, s.o.Recheck) != nil {
				return
			}
		case errors.As(err, &recent):
			log.Debug("discovery ran recently", "run_id", recent.Last.ID, "next", recent.Next)
			s.observe(Decision{Instance: instance, Action: "recent", RunID: recent.Last.ID})
		case err != nil:
			log.Error("starting a discovery failed", "err", err)
			s.observe(Decision{Instance: instance, Action: "error"})
			if sleep(ctx, s.o.Recheck) != nil {
				return
			}
		default:
			rec, _ := run.Execute(ctx)
			s.observe(Decision{Instance: instance, Action: "ran", RunID: rec.ID, Outcome: rec.Outcome})
		}
	}
}

// untilDue is how long until the instance's next run: Refresh after the start of the
// last one, at once when there is none.
func (s *Service) untilDue(ctx context.Context, instance string) (time.Duration, error) {
	last, err := s.o.DB.LastDiscoveryRun(ctx, instance)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !finished(last) {
		return 0, nil
	}
	return max(time.Until(dueAfter(last.StartedAt, s.o.Refresh)), 0), nil
}

func (s *Service) observe(d Decision) {
	if s.o.Observe != nil {
		s.o.Observe(d)
	}
}
