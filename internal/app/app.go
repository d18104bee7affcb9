// Package app assembles dexbridge processes: it starts the bus and the database, then
// any subset of the services, the way Loki and Mimir run monolithic or split from one
// binary. Shutdown goes front to back: the ingress stops taking requests and lets
// in-flight ones finish, then the workers drain, then NATS drains, then the pool closes.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Options of one process.
type Options struct {
	Config   config.Config
	Services []string // empty runs every service
	Log      *slog.Logger
	Version  string
	// OnReady, when set, is called once every service has started.
	OnReady func(Ready)
}

// Ready tells a caller (tests, the demo) where the process can be reached.
type Ready struct {
	IngressAddr net.Addr // nil when the ingress does not run here
	NATSURL     string
}

// Runner is a started service: Run returns nil after a clean stop once ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

// deps are what services are built from.
type deps struct {
	cfg      config.Config
	log      *slog.Logger
	version  string
	bus      *broker.Broker
	db       *pgxpool.Pool
	subjects events.Subjects
	rpc      *natsrpc.Client
	metrics  *metrics.Metrics

	instancesOnce sync.Once
	instanceSet   *instances.Set
	instancesErr  error
	limitersOnce  sync.Once
	sharedLimits  *ratelimit.Shared
	onListen      func(net.Addr)
}

// ServiceNames lists the services `dexbridge run` knows, in start order.
func ServiceNames() []string {
	var names []string
	for _, c := range components() {
		names = append(names, c.name)
	}
	return names
}

// Run starts the selected services and blocks until ctx ends and they have stopped.
func Run(ctx context.Context, o Options) error {
	selected, err := selectComponents(o.Services)
	if err != nil {
		return err
	}
	cfg := o.Config
	log := o.Log
	bus, err := broker.Connect(ctx, BrokerOptions(cfg, "dexbridge "+strings.Join(names(selected), ","), log))
	if err != nil {
		return err
	}
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout.D())
	}
	defer func() {
		c, cancel := closeCtx()
		defer cancel()
		bus.Close(c)
	}()
	db, err := store.OpenWith(ctx, cfg.DatabaseURL.Reveal(), PoolSettings(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := store.Migrate(ctx, db)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		log.Info("database migrated", "applied", applied)
	}

	m := metrics.New()
	ready := Ready{NATSURL: bus.ClientURL()}
	listened := make(chan net.Addr, 1)
	d := &deps{
		cfg: cfg, log: log, version: o.Version, bus: bus, db: db,
		subjects: events.NewSubjects(cfg.NATS.SubjectPrefix),
		rpc:      natsrpc.NewClient(bus.Conn, cfg.RequestTimeout.D()).WithMetrics(m),
		metrics:  m,
		onListen: func(a net.Addr) {
			select {
			case listened <- a:
			default:
			}
		},
	}
	var front, back []namedRunner
	if !slices.ContainsFunc(selected, func(c component) bool { return c.name == "ingress" }) {
		// Without the ingress, this process still exposes its metrics and health.
		front = append(front, namedRunner{"admin", newAdmin(d)})
	}
	for _, c := range selected {
		r, err := c.build(d)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if c.front {
			front = append(front, namedRunner{c.name, r})
		} else {
			back = append(back, namedRunner{c.name, r})
		}
	}
	log.Info("dexbridge starting", "services", names(selected), "version", o.Version, "nats", bus.ClientURL(), "embedded_nats", bus.Embedded())

	// Workers start first and stop last, so the ingress never forwards to nobody.
	backCtx, stopBack := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBack()
	backDone := start(backCtx, back)
	stopReloads := reloadOnHangup(back, log)
	defer stopReloads()
	frontCtx, stopFront := context.WithCancel(ctx)
	defer stopFront()
	frontDone := start(frontCtx, front)
	if o.OnReady != nil {
		if len(front) > 0 {
			select {
			case ready.IngressAddr = <-listened:
			case err := <-frontDone.first:
				frontDone.first <- err // leave it for the select below
			case <-ctx.Done():
			}
		}
		o.OnReady(ready)
	}

	var errs []error
	select {
	case <-ctx.Done():
	case err := <-frontDone.first:
		errs = append(errs, err)
	case err := <-backDone.first:
		errs = append(errs, err)
	}
	log.Info("dexbridge stopping")
	stopFront()
	errs = append(errs, frontDone.wait()...)
	stopBack()
	errs = append(errs, backDone.wait()...)
	log.Info("dexbridge stopped")
	return errors.Join(errs...)
}

type namedRunner struct {
	name string
	r    Runner
}

type running struct {
	first chan error // the first service to fail
	wg    sync.WaitGroup
	mu    sync.Mutex
	errs  []error
}

func (r *running) wait() []error {
	r.wg.Wait()
	return r.errs
}

func start(ctx context.Context, rs []namedRunner) *running {
	run := &running{first: make(chan error, len(rs))}
	for _, nr := range rs {
		run.wg.Add(1)
		go func() {
			defer run.wg.Done()
			err := nr.r.Run(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				// Returned, not logged: the caller of Run reports it (dexbridge run
				// prints it and exits).
				err = fmt.Errorf("%s: %w", nr.name, err)
				run.mu.Lock()
				run.errs = append(run.errs, err)
				run.mu.Unlock()
				run.first <- err
			}
		}()
	}
	return run
}

func selectComponents(want []string) ([]component, error) {
	all := components()
	if len(want) == 0 {
		return all, nil
	}
	var out []component
	for _, c := range all {
		if slices.Contains(want, c.name) {
			out = append(out, c)
		}
	}
	for _, w := range want {
		if !slices.Contains(ServiceNames(), w) {
			return nil, fmt.Errorf("unknown service %q (services: %s)", w, strings.Join(ServiceNames(), ", "))
		}
	}
	return out, nil
}

func names(cs []component) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// limiters is the process's one factory of shared limiters: each limiter leases its
// share of a deployment-wide budget, so two factories in one process would lease
// twice and hold twice the process's share.
func (d *deps) limiters() *ratelimit.Shared {
	d.limitersOnce.Do(func() { d.sharedLimits = ratelimit.NewShared(store.New(d.db)) })
	return d.sharedLimits
}

// instances is the process's one set of instance clients: every service of the
// process shares their token caches, and all take their budget from the
// deployment-wide limiters.
func (d *deps) instances() (*instances.Set, error) {
	d.instancesOnce.Do(func() {
		o, err := instances.OptionsFor(d.cfg, store.New(d.db), d.log, d.metrics)
		if err != nil {
			d.instancesErr = err
			return
		}
		d.instanceSet, d.instancesErr = instances.New(d.cfg, d.limiters(), o)
	})
	return d.instanceSet, d.instancesErr
}

// BrokerOptions is how a process with cfg joins (or runs) NATS.
func BrokerOptions(cfg config.Config, name string, log *slog.Logger) broker.Options {
	n := cfg.NATS
	return broker.Options{
		URL: n.URL, Listen: n.Listen, StoreDir: filepath.Join(cfg.DataDir, "nats"), Name: name, Log: log,
		Replicas: n.Replicas,
		TLS:      broker.TLS{CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile, VerifyClients: n.TLS.VerifyClients},
		Auth: broker.Auth{CredsFile: n.CredsFile, NKeySeedFile: n.NKeySeedFile, User: n.User,
			Password: n.Password.Reveal(), Token: n.Token.Reveal()},
	}
}
