package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/upstream"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Config is what a Discoverer needs.
type Config struct {
	DB        *store.DB
	Instances *instances.Set
	// Fields are the device fields to cache (CachedFields).
	Fields []string
	// Refresh is CHATBOT_CACHE_REFRESH: a scheduled run starts Refresh after the start
	// of the previous one. Period is USER_ACTIVITY_PERIOD.
	Refresh, Period time.Duration
	// Attempts per run (default 3); Backoff is the wait after the first failed
	// attempt, doubled after each (default 10 s).
	Attempts int
	Backoff  time.Duration
	// LimiterWait and RetryFor are the patience of discovery's calls to an instance:
	// how long a call may wait for the instance's rate limit (default 30 s) and how
	// long it is retried on 429 and 5xx (default 2 min).
	LimiterWait, RetryFor time.Duration
	// Conn, when set, carries a DiscoveryFinishedEvent after each run.
	Conn     *nats.Conn
	Subjects events.Subjects
	Log      *slog.Logger
	// Metrics, when set, counts runs by outcome, their durations and the rows loaded.
	Metrics *metrics.Metrics
}

// Discoverer runs discoveries of instances, one at a time per instance across every
// replica.
type Discoverer struct {
	cfg     Config
	clients map[string]upstream.Driver
	log     *slog.Logger
}

// NewDiscoverer checks cfg and fills in its defaults.
func NewDiscoverer(cfg Config) (*Discoverer, error) {
	if cfg.DB == nil || cfg.Instances == nil {
		return nil, errors.New("discovery: a database and instances are required")
	}
	if cfg.Refresh <= 0 || cfg.Period <= 0 {
		return nil, errors.New("discovery: refresh and period must be positive")
	}
	if len(cfg.Fields) == 0 {
		cfg.Fields = IdentificationFields()
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 10 * time.Second
	}
	if cfg.LimiterWait <= 0 {
		cfg.LimiterWait = 30 * time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Discoverer{cfg: cfg, clients: map[string]upstream.Driver{}, log: cfg.Log.With("service", "discovery")}
	for _, in := range cfg.Instances.List() {
		d.clients[in.Name] = in.Client.WithPolicy(cfg.LimiterWait, cfg.RetryFor)
	}
	return d, nil
}

// ErrBusy says a discovery of the instance is running, here or on another replica.
var ErrBusy = errors.New("a discovery of this instance is already running")

// finished reports whether a run counts for the schedule: one cut short by a shutdown
// or a crash refreshed nothing, and must not delay the next (a restart would leave the
// cache stale for a whole period).
func finished(r store.DiscoveryRun) bool {
	return r.Outcome == store.RunSuccess || r.Outcome == store.RunFailure
}

// RecentError says a scheduled run was not started because the last one began less
// than a refresh period ago; Next is when the next one is due.
type RecentError struct {
	Last store.DiscoveryRun
	Next time.Time
}

func (e *RecentError) Error() string {
	return fmt.Sprintf("discovery of %s ran at %s; the next is due at %s", e.Last.Instance,
		e.Last.StartedAt.UTC().Format(time.RFC3339), e.Next.UTC().Format(time.RFC3339))
}

// Run is a discovery that holds its instance's lease.
type Run struct {
	d      *Discoverer
	lease  *store.DiscoveryLease
	client upstream.Driver
	rec    store.DiscoveryRun
	log    *slog.Logger
}

// ID is the run's id in discovery_runs.
func (r *Run) ID() int64 { return r.rec.ID }

// Instance is the instance the run discovers.
func (r *Run) Instance() string { return r.rec.Instance }

// Begin takes the lease of instance and records a run. It returns ErrBusy when
// another discovery of it is running, and, unless force, a *RecentError when the
// last run started less than a refresh period ago. The caller must Execute the run,
// which releases the lease.
func (d *Discoverer) Begin(ctx context.Context, instance, trigger string, force bool) (*Run, error) {
	client, ok := d.clients[instance]
	if !ok {
		return nil, problem.New(problem.NotFound, "no instance %q is configured", instance)
	}
	lease, ok, err := d.cfg.DB.TryDiscoveryLease(ctx, instance)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBusy
	}
	if !force {
		last, err := d.cfg.DB.LastDiscoveryRun(ctx, instance)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			lease.Release(ctx)
			return nil, err
		case !finished(last):
		default:
			if next := dueAfter(last.StartedAt, d.cfg.Refresh); time.Now().Before(next) {
				lease.Release(ctx)
				return nil, &RecentError{Last: last, Next: next}
			}
		}
	}
	rec, err := lease.StartDiscoveryRun(ctx, trigger)
	if err != nil {
		lease.Release(ctx)
		return nil, err
	}
	return &Run{d: d, lease: lease, client: client, rec: rec,
		log: d.log.With("instance", instance, "run_id", rec.ID, "trigger", trigger)}, nil
}

// dueAfter is when the run after one started at start is due. A little early counts
// as due, so that clocks a few milliseconds apart do not skip a period.
func dueAfter(start time.Time, refresh time.Duration) time.Time {
	return start.Add(refresh - min(refresh/100, time.Second))
}

// RunOnce begins and executes a run.
func (d *Discoverer) RunOnce(ctx context.Context, instance, trigger string, force bool) (store.DiscoveryRun, error) {
	r, err := d.Begin(ctx, instance, trigger, force)
	if err != nil {
		return store.DiscoveryRun{}, err
	}
	return r.Execute(ctx)
}

// Execute makes up to Attempts attempts, with backoff between them, and records the
// outcome. After the last failed attempt the instance is marked down and its cached
// data removed; a successful attempt brings both back. A run stopped by ctx is
// recorded as cancelled and changes nothing. Execute always releases the lease.
func (r *Run) Execute(ctx context.Context) (store.DiscoveryRun, error) {
	defer r.lease.Release(ctx)
	start := time.Now()
	r.log.Info("discovery started")
	var lastErr error
	attempts := 0
	for attempts < r.d.cfg.Attempts {
		if attempts > 0 {
			wait := r.d.cfg.Backoff << (attempts - 1)
			r.log.Warn("discovery attempt failed", "attempt", attempts, "retry_in_ms", wait.Milliseconds(), "err", lastErr)
			if err := sleep(ctx, wait); err != nil {
				break
			}
		}
		attempts++
		if err := r.lease.Alive(ctx); err != nil {
			lastErr = err
			break
		}
		asOf := time.Now().UTC().Truncate(time.Second)
		counts, err := r.attempt(ctx, asOf)
		if err == nil {
			r.log.Info("discovery succeeded", "attempt", attempts, "devices", counts.Devices, "users", counts.Users,
				"activities", counts.Activities, "duration_ms", time.Since(start).Milliseconds())
			return r.finish(ctx, store.RunEnd{Outcome: store.RunSuccess, Attempts: attempts, Counts: &counts, DataAsOf: &asOf}, true)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		r.log.Info("discovery cancelled", "attempts", attempts)
		return r.finish(fctx, store.RunEnd{Outcome: store.RunCancelled, Attempts: attempts, Error: "stopped before it finished"}, r.up(fctx))
	}
	if aerr := r.lease.Alive(fctx); aerr != nil {
		// The lock went with the connection: another replica may be discovering now,
		// and the instance's health is not this run's to judge.
		r.log.Error("discovery lost its lease", "attempts", attempts, "err", lastErr)
		return r.finish(fctx, store.RunEnd{Outcome: store.RunFailure, Attempts: attempts, Error: errorText(lastErr)}, r.up(fctx))
	}
	r.log.Error("discovery failed, instance marked down and its cached data removed", "attempts", attempts, "err", lastErr)
	if err := r.d.cfg.DB.MarkInstanceDown(fctx, r.rec.Instance); err != nil {
		r.log.Error("marking the instance down failed", "err", err)
	}
	return r.finish(fctx, store.RunEnd{Outcome: store.RunFailure, Attempts: attempts, Error: errorText(lastErr)}, false)
}

// up reports the instance's recorded health (true when unknown).
func (r *Run) up(ctx context.Context) bool {
	hs, err := r.d.cfg.DB.InstancesHealth(ctx)
	if err != nil {
		return true
	}
	for _, h := range hs {
		if h.Name == r.rec.Instance {
			return h.Up
		}
	}
	return true
}

// errorText is a failure as discovery_runs records it: the error's text, which names
// the instance and the call (nexthink errors never hold secrets or URLs).
func errorText(err error) string {
	if err == nil {
		return "unknown error"
	}
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}

func (r *Run) finish(ctx context.Context, end store.RunEnd, up bool) (store.DiscoveryRun, error) {
	rec, err := r.d.cfg.DB.FinishDiscoveryRun(ctx, r.rec.ID, end)
	if err != nil {
		r.log.Error("recording the end of the discovery failed", "err", err)
		return r.rec, err
	}
	r.rec = rec
	r.publish(rec, up)
	r.observe(rec)
	if end.Outcome != store.RunSuccess {
		return rec, fmt.Errorf("discovery of %s: %s after %d attempts: %s", rec.Instance, end.Outcome, end.Attempts, end.Error)
	}
	return rec, nil
}

// observe records the run in the metrics.
func (r *Run) observe(rec store.DiscoveryRun) {
	m := r.d.cfg.Metrics
	if m == nil {
		return
	}
	m.DiscoveryRuns.WithLabelValues(rec.Instance, rec.Outcome).Inc()
	if rec.EndedAt != nil {
		m.DiscoveryDuration.WithLabelValues(rec.Instance).Observe(rec.EndedAt.Sub(rec.StartedAt).Seconds())
	}
	for kind, n := range map[string]*int64{"devices": rec.Devices, "users": rec.Users, "activities": rec.Activities} {
		if n != nil {
			m.DiscoveryRows.WithLabelValues(rec.Instance, kind).Add(float64(*n))
		}
	}
}

// publish announces the end of the run, best effort.
func (r *Run) publish(rec store.DiscoveryRun, up bool) {
	nc := r.d.cfg.Conn
	if nc == nil {
		return
	}
	msg := events.DiscoveryFinishedEvent{Header: events.NewHeader(events.TypeDiscoveryFinished), Run: wire.DiscoveryRun(rec), Up: up}
	data, err := json.Marshal(msg)
	if err == nil {
		err = nc.Publish(r.d.cfg.Subjects.Of(events.DiscoveryFinished, rec.Instance), data)
	}
	if err != nil {
		r.log.Warn("publishing the end of the discovery failed", "err", err)
	}
}

// attempt exports devices, users and activity into the swap's tables, then swaps the
// instance's cached rows for them.
//
// The five exports run at once: most of an export's time is the instance's (the
// export is computed, then polled for), and the Nexthink API publishes no limit on
// exports in flight beyond the NQL rate limit, which the client's limiter keeps. The
// swap's transaction, on the lease's one connection, is open from the start: each
// results file is streamed into a COPY as it downloads, straight into the instance's
// next devices, users or activity table, one COPY at a time, in the order the
// exports complete. An export that completes while another is loading waits before
// its download, not in memory. The devices and the users are indexed as soon as they
// are in, while the activity exports still run; the activity once the last is in.
func (r *Run) attempt(ctx context.Context, asOf time.Time) (store.SwapCounts, error) {
	swap, err := r.lease.BeginSwap(ctx, asOf.Add(-r.d.cfg.Period), asOf)
	if err != nil {
		return store.SwapCounts{}, err
	}
	conn := make(chan struct{}, 1) // the lease's connection, held by one statement or COPY at a time
	g, gctx := errgroup.WithContext(ctx)
	decs := make([]*deviceDecoder, len(platforms))
	devicesStaged := make(chan struct{}) // closed once every device export is staged
	var staged atomic.Int32
	for k, p := range platforms {
		g.Go(func() error {
			return stage(gctx, r, conn, QueryDevices, map[string]string{"platform": p}, func(header, rec []string) (*store.StagedDevice, error) {
				if decs[k] == nil {
					var err error
					if decs[k], err = newDeviceDecoder(header, r.d.cfg.Fields); err != nil {
						return nil, err
					}
				}
				return decs[k].decode(rec), nil
			}, swap.CopyDevices, func() {
				if staged.Add(1) == int32(len(platforms)) {
					close(devicesStaged)
				}
			})
		})
	}
	var udec *userDecoder
	usersStaged := make(chan struct{})
	g.Go(func() error {
		return stage(gctx, r, conn, QueryUsers, nil, func(header, rec []string) (*store.StagedUser, error) {
			if udec == nil {
				var err error
				if udec, err = newUserDecoder(header); err != nil {
					return nil, err
				}
			}
			return udec.decode(rec), nil
		}, swap.CopyUsers, func() { close(usersStaged) })
	})
	for _, p := range platforms {
		var adec *activityDecoder
		g.Go(func() error {
			return stage(gctx, r, conn, QueryActivity, map[string]string{"platform": p}, func(header, rec []string) (*store.StagedActivity, error) {
				if adec == nil {
					var err error
					if adec, err = newActivityDecoder(header); err != nil {
						return nil, err
					}
				}
				return adec.decode(rec), nil
			}, swap.CopyActivity)
		})
	}
	// Devices and users are indexed as soon as they are in, on the connection, between
	// two COPYs.
	var earlyTime time.Duration // indexing devices and users (logged as devices_ms)
	index := func(staged chan struct{}, f func(context.Context) error) func() error {
		return func() error {
			return onConn(gctx, conn, staged, func(ctx context.Context) error {
				start := time.Now()
				err := f(ctx)
				earlyTime += time.Since(start) // one at a time, on the connection
				return err
			})
		}
	}
	g.Go(index(devicesStaged, swap.IndexDevices))
	g.Go(index(usersStaged, swap.IndexUsers))
	if err := g.Wait(); err != nil {
		swap.Rollback(ctx)
		return store.SwapCounts{}, err
	}
	for _, dec := range decs {
		if dec != nil && len(dec.missing) > 0 {
			r.log.Warn("the saved device query lacks cached fields", "query_id", QueryDevices, "fields", dec.missing)
			break
		}
	}
	if dyn := dynamicFields(decs); len(dyn) > 0 {
		r.log.Info("discovery caches the tenant's dynamic fields", "fields", dyn)
	}
	start := time.Now()
	counts, err := swap.Finish(ctx)
	r.log.Info("discovery swapped", "devices_ms", earlyTime.Milliseconds(),
		"rest_ms", time.Since(start).Milliseconds(), "duration_ms", (earlyTime + time.Since(start)).Milliseconds(),
		"steps", swap.Steps(), "err", err)
	return counts, err
}

// onConn runs f on the lease's connection once ready is closed and conn is free. It
// returns nil without running f when ctx ends first: an export failed, and its error
// is the attempt's.
func onConn(ctx context.Context, conn, ready chan struct{}, f func(context.Context) error) error {
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	select {
	case conn <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-conn }()
	if ctx.Err() != nil {
		return nil
	}
	return f(ctx)
}

// stage runs one export and streams its rows into a COPY on the lease's connection
// once conn is free: the download starts only then, so a waiting export holds no
// rows. decode turns a record into a row.
func stage[T any](ctx context.Context, r *Run, conn chan struct{}, query string, params map[string]string,
	decode func(header, rec []string) (*T, error),
	load func(ctx context.Context, next func() (*T, error)) (int64, error), onStaged ...func(),
) error {
	start := time.Now()
	var ready time.Time
	started := make(chan struct{})  // closed once the export completed and conn is ours
	exported := make(chan struct{}) // closed when the export returns
	n, err := pump(ctx, func(ctx context.Context, emit func(*T) error) error {
		defer close(exported)
		return r.client.ExportStream(ctx, query, params, func(bool) error {
			ready = time.Now()
			select {
			case conn <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			close(started)
			return nil
		}, func(header, rec []string) error {
			v, err := decode(header, rec)
			if err != nil {
				return err
			}
			return emit(v)
		})
	}, func(ctx context.Context, next func() (*T, error)) (int64, error) {
		select {
		case <-started:
		case <-exported:
		case <-ctx.Done():
		}
		select {
		case <-started:
			defer func() { <-conn }()
		default: // the export failed before it completed: pump returns its error
			return 0, ctx.Err()
		}
		return load(ctx, next)
	})
	if err != nil {
		return err
	}
	for _, f := range onStaged {
		f()
	}
	if !ready.IsZero() {
		r.log.Info("discovery staged", "query_id", query, "params", params, "rows", n,
			"export_ms", ready.Sub(start).Milliseconds(), "load_ms", time.Since(ready).Milliseconds())
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dynamicFields lists the dynamic fields the device exports returned, sorted.
func dynamicFields(decs []*deviceDecoder) []string {
	var out []string
	for _, dec := range decs {
		if dec != nil {
			out = append(out, dec.dynamic...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
