// Package pruner deletes the rows dexbridge no longer needs, so that no table grows
// without end: every Interval (an hour), each growing table loses its rows older than
// its retention (config.Retention), a small batch at a time with a pause between
// batches, so the deletes never hold a lock for long nor crowd out the requests.
//
// Exactly one pruner works at a time, however many replicas run it: it holds the
// pruner's lease (store.PrunerLease, a PostgreSQL advisory lock on a connection of its
// own, as discovery and the poller do) and deletes through that connection. A replica
// that finds the lease taken tries again every LeaseRetry. It is a service of its own
// (`dexbridge run pruner`) rather than part of a worker: it needs neither NATS nor
// the tenant, it keeps its own connection, and a split deployment places it (or
// leaves it out) apart from the latency-sensitive workers.
//
// What is never pruned, whatever its age: an execution that is not final (nor its
// idempotency key); a proactive event with a callback still pending, or the newest
// event of its subject and monitor (suppression reads it); a discovery run still
// going. Audit records can be exported (Options.AuditExport) before they are deleted:
// a batch is deleted only once its records are synced to the export.
package pruner

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/dexbridge/dexbridge/internal/auditlog"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Retention is how long each table's rows are kept; zero keeps them for ever.
type Retention struct {
	WebhookDeliveries   time.Duration
	ProactiveEvents     time.Duration // events no longer open
	OpenProactiveEvents time.Duration // events nobody closed
	IdempotencyKeys     time.Duration
	Executions          time.Duration
	Audit               time.Duration
	Diagnoses           time.Duration
	RateLimits          time.Duration
	DiscoveryRuns       int           // runs kept per instance
	V6Routes            time.Duration // routes of V6 devices not learned nor confirmed since
	V6Engines           time.Duration // health of V6 Engines not reported nor listed since
}

// Options are the pruner's dependencies and settings.
type Options struct {
	DB        *store.DB
	Retention Retention
	// Interval is the time between the starts of two runs (retention.interval);
	// a replica that takes the lease runs at once.
	Interval time.Duration
	// LeaseRetry is how often a replica without the lease tries to take it (default
	// a minute, or Interval when shorter).
	LeaseRetry time.Duration
	BatchSize  int           // rows per delete (default 1000)
	BatchPause time.Duration // between two deletes
	// AuditExport, when set, is the file or directory audit records are exported to
	// before they are deleted (auditlog.Export).
	AuditExport string
	Metrics     *metrics.Metrics
	Log         *slog.Logger
	Now         func() time.Time
	// Observe, when set, is told every run of the lease holder (tests, benchmarks).
	Observe func(Report)
}

// Report is what one run did.
type Report struct {
	Rows    map[string]int64 // rows deleted, by table
	Batches int
	Took    time.Duration
	// Err joins the failures: a table that failed was left for the next run, the
	// others were still pruned.
	Err error
}

// Total is the number of rows deleted.
func (r Report) Total() int64 {
	var n int64
	for _, v := range r.Rows {
		n += v
	}
	return n
}

// Service prunes while it holds the lease.
type Service struct {
	o      Options
	log    *slog.Logger
	export *auditlog.Export
}

// New checks the export path and returns the pruner; Run starts it.
func New(o Options) (*Service, error) {
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.LeaseRetry <= 0 {
		o.LeaseRetry = min(time.Minute, o.Interval)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, log: o.Log.With("service", "pruner")}
	if o.AuditExport != "" {
		exp, err := auditlog.NewExport(o.AuditExport, o.Now)
		if err != nil {
			return nil, err
		}
		s.export = exp
	}
	return s, nil
}

// Run prunes whenever it holds the lease, until ctx ends; then it releases it.
func (s *Service) Run(ctx context.Context) error {
	for {
		lease, ok, err := s.o.DB.TryPrunerLease(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.log.Warn("taking the pruner lease failed", "err", err)
		case ok:
			s.log.Info("pruning")
			s.lead(ctx, lease)
			lease.Release(ctx)
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("pruner lease lost")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.o.LeaseRetry):
		}
	}
}

// lead runs at once, then every Interval, while the lease holds.
func (s *Service) lead(ctx context.Context, lease *store.PrunerLease) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if !s.holds(ctx, lease) {
			return
		}
		rep := s.run(ctx, lease)
		if ctx.Err() != nil {
			return
		}
		s.report(rep)
		// A lost connection fails every table: step back now, not an interval
		// later, so that the replica that took the lock over is alone.
		if rep.Err != nil && !s.holds(ctx, lease) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// holds checks that the lease's connection, and so the lock, is still there.
func (s *Service) holds(ctx context.Context, lease *store.PrunerLease) bool {
	err := lease.Alive(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("pruner lease check failed", "err", err)
	}
	return err == nil
}

// step prunes one table (and the rows that depend on it) a batch at a time.
type step struct {
	table string
	batch func(ctx context.Context, l *store.PrunerLease, after store.Cursor, limit int) (store.Pruned, error)
}

// prune deletes one batch of a table's rows from before, from after (the method
// expressions of store.PrunerLease, and adapters to them).
type prune func(l *store.PrunerLease, ctx context.Context, before time.Time, after store.Cursor, limit int) (store.Pruned, error)

// noWalk adapts a pruning that deletes every row it finds, so needs no cursor.
func noWalk(f func(*store.PrunerLease, context.Context, time.Time, int) (store.Pruned, error)) prune {
	return func(l *store.PrunerLease, ctx context.Context, before time.Time, _ store.Cursor, limit int) (store.Pruned, error) {
		return f(l, ctx, before, limit)
	}
}

// steps are the prunings the retention asks for, cut at now; a table kept for ever
// has none. Idempotency keys go before the executions that would otherwise take them
// along.
func (s *Service) steps(now time.Time) []step {
	r := s.o.Retention
	var out []step
	cut := func(keep time.Duration, table string, f prune) {
		if keep > 0 {
			before := now.Add(-keep)
			out = append(out, step{table, func(ctx context.Context, l *store.PrunerLease, after store.Cursor, limit int) (store.Pruned, error) {
				return f(l, ctx, before, after, limit)
			}})
		}
	}
	cut(r.IdempotencyKeys, store.TableIdempotencyKeys, noWalk((*store.PrunerLease).PruneIdempotencyKeys))
	cut(r.Executions, store.TableExecutions, noWalk((*store.PrunerLease).PruneExecutions))
	cut(r.Audit, store.TableAudit, noWalk(s.pruneAudit))
	cut(r.Diagnoses, store.TableDiagnoses, noWalk((*store.PrunerLease).PruneDiagnoses))
	cut(r.Diagnoses, store.TableLastKnownValues, noWalk((*store.PrunerLease).PruneLastKnownValues))
	cut(r.WebhookDeliveries, store.TableWebhookDeliveries, noWalk((*store.PrunerLease).PruneWebhookDeliveries))
	cut(r.ProactiveEvents, store.TableProactiveEvents, (*store.PrunerLease).PruneClosedProactiveEvents)
	cut(r.OpenProactiveEvents, store.TableProactiveEvents, (*store.PrunerLease).PruneOpenProactiveEvents)
	cut(r.RateLimits, store.TableRateLimits, (*store.PrunerLease).PruneRateLimits)
	cut(r.V6Routes, store.TableV6Routes, noWalk((*store.PrunerLease).PruneV6Routes))
	cut(r.V6Engines, store.TableV6Engines, noWalk((*store.PrunerLease).PruneV6Engines))
	if r.DiscoveryRuns > 0 {
		out = append(out, step{store.TableDiscoveryRuns, func(ctx context.Context, l *store.PrunerLease, _ store.Cursor, limit int) (store.Pruned, error) {
			return l.PruneDiscoveryRuns(ctx, r.DiscoveryRuns, limit)
		}})
	}
	return out
}

// pruneAudit deletes a batch of audit records, exported first when asked.
func (s *Service) pruneAudit(l *store.PrunerLease, ctx context.Context, before time.Time, limit int) (store.Pruned, error) {
	if s.export == nil {
		return l.PruneAudit(ctx, before, limit, nil)
	}
	return l.PruneAudit(ctx, before, limit, s.export.Write)
}

// run prunes every table once, to its end, and says what it did.
func (s *Service) run(ctx context.Context, lease *store.PrunerLease) (rep Report) {
	start := time.Now()
	rep = Report{Rows: map[string]int64{}}
	var errs []error
	defer func() {
		if s.export != nil {
			if err := s.export.End(); err != nil {
				errs = append(errs, err)
			}
		}
		rep.Err = errors.Join(errs...)
		rep.Took = time.Since(start)
	}()
	for _, st := range s.steps(s.o.Now()) {
		var after store.Cursor
		for {
			if rep.Batches > 0 && !sleep(ctx, s.o.BatchPause) {
				return rep
			}
			p, err := st.batch(ctx, lease, after, s.o.BatchSize)
			rep.Batches++
			if err != nil {
				if ctx.Err() == nil {
					errs = append(errs, err)
				}
				break
			}
			for table, n := range p.Rows {
				rep.Rows[table] += n
				if s.o.Metrics != nil && n > 0 {
					s.o.Metrics.PrunedRows.WithLabelValues(table).Add(float64(n))
				}
			}
			if !p.More {
				break
			}
			after = p.Next
		}
		if ctx.Err() != nil {
			return rep
		}
	}
	return rep
}

// report logs a run once, with its counts, and counts it.
func (s *Service) report(rep Report) {
	attrs := []any{"rows", rep.Total(), "batches", rep.Batches, "duration_ms", rep.Took.Milliseconds()}
	for _, table := range slices.Sorted(maps.Keys(rep.Rows)) {
		attrs = append(attrs, table, rep.Rows[table])
	}
	outcome := "ok"
	if rep.Err != nil {
		outcome = "failed"
		s.log.Warn("pruning run failed", append(attrs, "err", rep.Err)...)
	} else {
		s.log.Info("pruning run", attrs...)
	}
	if s.o.Metrics != nil {
		s.o.Metrics.PruningRuns.WithLabelValues(outcome).Inc()
	}
	if s.o.Observe != nil {
		s.o.Observe(rep)
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
