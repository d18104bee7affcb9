package nxsim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// tenant is one emulated Nexthink instance.
type tenant struct {
	name         string
	cfg          TenantConfig
	loc          *time.Location
	clock        func() time.Time
	log          *slog.Logger
	fleet        *fleet.Fleet
	src          source
	schema       *nql.Schema
	queries      *queryStore
	tokens       *tokenStore
	faults       *faultState
	counters     *counters
	executor     *executor
	exports      *exportStore
	library      []remoteAction
	queryTimeout time.Duration
	handler      http.Handler
}

// newTenant generates the tenant's fleet and wires its parts. ctx bounds its
// background work (executions, exports); dir holds its results files.
func newTenant(ctx context.Context, cfg Config, tc TenantConfig, queries map[string]*savedQuery, schema *nql.Schema, dir string) (*tenant, error) {
	loc, err := time.LoadLocation(tc.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: time zone: %w", tc.Name, err)
	}
	start := time.Now()
	f, err := fleet.New(fleet.Config{Size: tc.Size, Seed: tc.Seed, Prefix: tc.Prefix, Domain: tc.Domain,
		Scenarios: *tc.Scenarios, Clock: cfg.Clock})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", tc.Name, err)
	}
	log := cfg.Logger.With("instance", tc.Name)
	log.Info("fleet generated", "devices", f.Size(), "users", f.Users(), "duration_ms", time.Since(start).Milliseconds())
	t := &tenant{
		name: tc.Name, cfg: tc, loc: loc, clock: cfg.Clock, log: log, fleet: f, src: source{f},
		schema: schema, queries: newQueryStore(queries),
		tokens:   newTokenStore(tc.Credentials, cfg.TokenTTL, cfg.Clock),
		faults:   &faultState{base: cfg.Latency},
		counters: newCounters(),
		executor: newExecutor(f, cfg.Executions, cfg.Clock, log),
		exports:  newExportStore(ctx, dir, cfg.ExportDelay, cfg.Clock),
		library:  library(), queryTimeout: cfg.QueryTimeout,
	}
	t.handler = t.routes()
	return t, nil
}
