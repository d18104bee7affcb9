package app

import (
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
			DiscoveryRuns: r.DiscoveryRuns,
		},
		Interval: r.Interval.D(), BatchSize: r.BatchSize, BatchPause: r.BatchPause.D(), AuditExport: r.AuditExport,
		Metrics: d.metrics, Log: d.log,
	})
}

// PoolSettings are the database pool settings of cfg, for every process and command
// that opens the database.
func PoolSettings(cfg config.Config) store.PoolSettings {
	return store.PoolSettings{MaxConns: int32(cfg.Database.MaxConns), MinConns: int32(cfg.Database.MinConns),
		StatementTimeout: cfg.Database.StatementTimeout.D()}
}
