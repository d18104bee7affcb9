package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Retention says how long the pruner (services/pruner) keeps the rows of each table
// that grows with use, and how it deletes them. A zero period keeps a table's rows
// for ever.
type Retention struct {
	Interval   Duration `yaml:"interval"`    // between pruning runs
	BatchSize  int      `yaml:"batch_size"`  // rows per delete
	BatchPause Duration `yaml:"batch_pause"` // between two deletes, so the pruner never hogs the database

	WebhookDeliveries Duration `yaml:"webhook_deliveries"` // dedupe records of webhooks
	// ProactiveEvents applies to events no longer open; OpenProactiveEvents to those
	// nobody closed. Events with a callback still pending, and the newest of each
	// subject and monitor, stay.
	ProactiveEvents     Duration `yaml:"proactive_events"`
	OpenProactiveEvents Duration `yaml:"open_proactive_events"`
	IdempotencyKeys     Duration `yaml:"idempotency_keys"` // only those of final executions
	Executions          Duration `yaml:"executions"`       // final ones, with their states
	Audit               Duration `yaml:"audit"`
	// AuditExport, when set, is where audit records go (JSON lines, synced) before
	// they are deleted: a file they are appended to, or a directory that gets one
	// file per pruning run.
	AuditExport   string   `yaml:"audit_export"`
	Diagnoses     Duration `yaml:"diagnoses"`
	RateLimits    Duration `yaml:"rate_limits"`    // rows of keys not limited since
	DiscoveryRuns int      `yaml:"discovery_runs"` // runs kept per instance
	// V6Routes applies to the Engine routes of V6 devices (v6_routes) nobody has
	// learned or confirmed since: every discovery confirms the routes of the devices
	// it lists.
	V6Routes Duration `yaml:"v6_routes"`
	// V6Engines applies to the Engine health of V6 instances (v6_engines) no
	// process has reported or listed since: an Engine gone from the configuration
	// or the Portal's list.
	V6Engines Duration `yaml:"v6_engines"`
}

// MinV6RouteRetention is the shortest retention.v6_routes: the time a V6 driver
// trusts a route (nexthinkv6.DefaultRouteTTL, which a test keeps in step). A
// route pruned younger would only cost a fan-out to every Engine.
const MinV6RouteRetention = 10 * time.Minute

// MinV6EngineRetention is the shortest retention.v6_engines: twice the default
// discovery period (cache.refresh). Every discovery calls every Engine, which
// records its health, so an Engine still in use is not pruned between two runs,
// even when one is late.
const MinV6EngineRetention = 2 * time.Hour

func defaultRetention() Retention {
	const day = 24 * time.Hour
	return Retention{
		Interval: Duration(time.Hour), BatchSize: 1000, BatchPause: Duration(100 * time.Millisecond),
		WebhookDeliveries: Duration(30 * day), ProactiveEvents: Duration(30 * day), OpenProactiveEvents: Duration(90 * day),
		IdempotencyKeys: Duration(day), Executions: Duration(90 * day), Audit: Duration(365 * day),
		Diagnoses: Duration(30 * day), RateLimits: Duration(time.Hour), DiscoveryRuns: 168, V6Routes: Duration(day),
		V6Engines: Duration(day),
	}
}

func (c Config) validateRetention() error {
	r := c.Retention
	if r.Interval.D() < time.Second {
		return &Error{Key: "retention.interval", Reason: "want at least 1s"}
	}
	if r.BatchSize < 1 || r.BatchSize > 100_000 {
		return &Error{Key: "retention.batch_size", Reason: fmt.Sprintf("want 1 to 100000, got %d", r.BatchSize)}
	}
	for _, p := range []struct {
		key string
		v   Duration
	}{
		{"retention.batch_pause", r.BatchPause}, {"retention.webhook_deliveries", r.WebhookDeliveries},
		{"retention.proactive_events", r.ProactiveEvents}, {"retention.open_proactive_events", r.OpenProactiveEvents},
		{"retention.idempotency_keys", r.IdempotencyKeys}, {"retention.executions", r.Executions},
		{"retention.audit", r.Audit}, {"retention.diagnoses", r.Diagnoses}, {"retention.rate_limits", r.RateLimits},
		{"retention.v6_routes", r.V6Routes}, {"retention.v6_engines", r.V6Engines},
	} {
		if p.v < 0 {
			return &Error{Key: p.key, Reason: "must not be negative (0s keeps the rows for ever)"}
		}
	}
	if r.DiscoveryRuns < 0 {
		return &Error{Key: "retention.discovery_runs", Reason: "must not be negative (0 keeps every run)"}
	}
	// A topic remediation runs with the latest diagnosis younger than this: the
	// pruner must never delete one it could use.
	if r.Diagnoses > 0 && r.Diagnoses < c.Executions.DiagnosisMaxAge {
		return &Error{Key: "retention.diagnoses", Reason: fmt.Sprintf("must be at least executions.diagnosis_max_age (%s), or 0s", c.Executions.DiagnosisMaxAge)}
	}
	if r.V6Routes > 0 && r.V6Routes.D() < MinV6RouteRetention {
		return &Error{Key: "retention.v6_routes", Reason: fmt.Sprintf("must be at least %s (the time a route is trusted), or 0s", Duration(MinV6RouteRetention))}
	}
	if r.V6Engines > 0 && r.V6Engines.D() < MinV6EngineRetention {
		return &Error{Key: "retention.v6_engines", Reason: fmt.Sprintf("must be at least %s (twice the default discovery period), or 0s", Duration(MinV6EngineRetention))}
	}
	if r.AuditExport != "" {
		dir := r.AuditExport
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return &Error{Key: "retention.audit_export", Reason: fmt.Sprintf("want a directory, or a file in one; %s is not a directory", dir)}
		}
	}
	return nil
}
