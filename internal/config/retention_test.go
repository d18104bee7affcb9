package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetentionAndDatabaseSettings loads the new keys from the file and the
// environment, and refuses bad values naming the key (and its variable).
func TestRetentionAndDatabaseSettings(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantKey string // "" for success
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			r := c.Retention
			if r.Interval.D() != time.Hour || r.BatchSize != 1000 || r.IdempotencyKeys.D() != 24*time.Hour ||
				r.Diagnoses.D() != 30*24*time.Hour || r.Audit.D() != 365*24*time.Hour || r.Executions.D() != 90*24*time.Hour ||
				r.WebhookDeliveries.D() != 30*24*time.Hour || r.ProactiveEvents.D() != 30*24*time.Hour ||
				r.OpenProactiveEvents.D() != 90*24*time.Hour || r.RateLimits.D() != time.Hour || r.DiscoveryRuns != 168 ||
				r.AuditExport != "" || r.V6Routes.D() != 24*time.Hour || r.V6Engines.D() != 24*time.Hour {
				t.Errorf("retention: got %+v", r)
			}
			if c.Database != (Database{}) {
				t.Errorf("database: got %+v, want the URL's and pgx's own settings", c.Database)
			}
		}},
		{name: "from the file",
			file: "retention:\n  audit: 730d\n  audit_export: " + dir + "\n  diagnoses: 0s\n  batch_size: 200\n  batch_pause: 10ms\n  discovery_runs: 10\n  v6_routes: 7d\n  v6_engines: 3h\n" +
				"database:\n  max_conns: 20\n  min_conns: 2\n  statement_timeout: 30s\n",
			check: func(t *testing.T, c Config) {
				r := c.Retention
				if r.Audit.D() != 730*24*time.Hour || r.AuditExport != dir || r.Diagnoses != 0 || r.BatchSize != 200 ||
					r.BatchPause.D() != 10*time.Millisecond || r.DiscoveryRuns != 10 || r.V6Routes.D() != 7*24*time.Hour ||
					r.V6Engines.D() != 3*time.Hour {
					t.Errorf("retention: got %+v", r)
				}
				if c.Database != (Database{MaxConns: 20, MinConns: 2, StatementTimeout: Duration(30 * time.Second)}) {
					t.Errorf("database: got %+v", c.Database)
				}
			}},
		{name: "database from the environment",
			file: "database:\n  max_conns: 20\n",
			env:  map[string]string{"DATABASE_MAX_CONNS": "8", "DATABASE_MIN_CONNS": "1", "DATABASE_STATEMENT_TIMEOUT": "5s"},
			check: func(t *testing.T, c Config) {
				if c.Database != (Database{MaxConns: 8, MinConns: 1, StatementTimeout: Duration(5 * time.Second)}) {
					t.Errorf("database: got %+v", c.Database)
				}
			}},
		{name: "export to a new file in a directory", file: "retention:\n  audit_export: " + filepath.Join(dir, "audit.jsonl") + "\n"},
		{name: "unknown key", file: "retention:\n  audit_days: 3\n", wantKey: "retention"},
		{name: "negative period", file: "retention:\n  executions: -1h\n", wantKey: "retention.executions"},
		{name: "period without a unit", file: "retention:\n  audit: 365\n", wantKey: "retention.audit"},
		{name: "no batch", file: "retention:\n  batch_size: 0\n", wantKey: "retention.batch_size"},
		{name: "interval too short", file: "retention:\n  interval: 10ms\n", wantKey: "retention.interval"},
		{name: "v6 routes kept for ever", file: "retention:\n  v6_routes: 0s\n", check: func(t *testing.T, c Config) {
			if c.Retention.V6Routes != 0 {
				t.Errorf("v6_routes: got %s, want 0s", c.Retention.V6Routes)
			}
		}},
		{name: "v6 routes pruned while still trusted", file: "retention:\n  v6_routes: 5m\n", wantKey: "retention.v6_routes"},
		{name: "v6 engines kept for ever", file: "retention:\n  v6_engines: 0s\n", check: func(t *testing.T, c Config) {
			if c.Retention.V6Engines != 0 {
				t.Errorf("v6_engines: got %s, want 0s", c.Retention.V6Engines)
			}
		}},
		{name: "v6 engines at the shortest", file: "retention:\n  v6_engines: 2h\n"},
		{name: "v6 engines pruned between two discoveries", file: "retention:\n  v6_engines: 1h\n", wantKey: "retention.v6_engines"},
		{name: "negative discovery runs", file: "retention:\n  discovery_runs: -1\n", wantKey: "retention.discovery_runs"},
		{name: "diagnoses shorter than a remediation may need",
			file: "executions:\n  diagnosis_max_age: 2h\nretention:\n  diagnoses: 1h\n", wantKey: "retention.diagnoses"},
		{name: "export into nowhere", file: "retention:\n  audit_export: " + filepath.Join(dir, "missing", "audit.jsonl") + "\n",
			wantKey: "retention.audit_export"},
		{name: "bad max conns", env: map[string]string{"DATABASE_MAX_CONNS": "many"}, wantKey: "DATABASE_MAX_CONNS"},
		{name: "min above max", env: map[string]string{"DATABASE_MAX_CONNS": "2", "DATABASE_MIN_CONNS": "3"}, wantKey: "database.min_conns"},
		{name: "negative statement timeout", file: "database:\n  statement_timeout: -1s\n", wantKey: "database.statement_timeout"},
		{name: "bad statement timeout", env: map[string]string{"DATABASE_STATEMENT_TIMEOUT": "30"}, wantKey: "DATABASE_STATEMENT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.file, tt.env)
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.wantKey != "" && err == nil:
				t.Fatalf("got no error, want one naming %s", tt.wantKey)
			case tt.wantKey != "" && !strings.Contains(err.Error(), tt.wantKey):
				t.Errorf("got %q, want it to name %s", err, tt.wantKey)
			}
			if err == nil && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestRetentionValidate: the schema's duration pattern has no sign, so the
// file cannot give one; Validate refuses them from anywhere else.
func TestRetentionValidate(t *testing.T) {
	c := Default()
	c.DatabaseURL = validDB
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Retention.RateLimits = Duration(-time.Second)
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "retention.rate_limits") {
		t.Errorf("got %v, want retention.rate_limits refused", err)
	}
	c = Default()
	c.DatabaseURL = validDB
	c.Retention.V6Engines = Duration(-time.Hour)
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "retention.v6_engines") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("got %v, want a negative retention.v6_engines refused", err)
	}
	c = Default()
	c.DatabaseURL = validDB
	c.Retention.AuditExport = filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(c.Retention.AuditExport, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("an existing export file: %v", err)
	}
}
