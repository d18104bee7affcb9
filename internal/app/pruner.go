package app

import (
	"runtime"
	"strings"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/services/pruner"
)

func buildPruner(d *deps) (Runner, error) {
	r := d.cfg.Retention
	return pruner.New(pruner.Options{
		DB: store.New(d.db),
		Retention: pruner.Retention{
			WebhookDeliveries: r.WebhookDeliveries.D(), ProactiveEvents: r.ProactiveEvents.D(),
			OpenProactiveEvents: r.OpenProactiveEvents.D(), IdempotencyKeys: r.IdempotencyKeys.D(),
			Executions: r.Executions.D(), Audit: r.Audit.D(), Diagnoses: r.Diagnoses.D(), RateLimits: r.RateLimits.D(),
			DiscoveryRuns: r.DiscoveryRuns, V6Routes: r.V6Routes.D(), V6Engines: r.V6Engines.D(),
		},
		Interval: r.Interval.D(), BatchSize: r.BatchSize, BatchPause: r.BatchPause.D(), AuditExport: r.AuditExport,
		Metrics: d.metrics, Log: d.log,
	})
}

// PoolSettings are the database pool settings of cfg, for every process and command
// that opens the database.
func PoolSettings(cfg config.Config) store.PoolSettings {
	maxConns := int32(cfg.Database.MaxConns)
	if maxConns == 0 && !strings.Contains(cfg.DatabaseURL.Reveal(), "pool_max_conns") {
		maxConns = defaultMaxConns()
	}
	return store.PoolSettings{MaxConns: maxConns, MinConns: int32(cfg.Database.MinConns),
		StatementTimeout: cfg.Database.StatementTimeout.D()}
}

// defaultMaxConns is the pool's size when neither database.max_conns nor the URL
// sets it: 16, or 4 per core if more. pgx's own default (4 on 2 cores) made the
// identification worker's 64 handlers, and the limiter's leases behind them, queue
// for a connection while the database had room (the identify benchmark: 60 of 64
// requests waiting for one).
func defaultMaxConns() int32 { return int32(max(16, 4*runtime.NumCPU())) }
