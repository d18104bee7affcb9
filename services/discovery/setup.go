package discovery

import (
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// FromConfig builds the discoverer of a process: the configured instances on the
// deployment-wide limiters, the cached fields (cached_fields_file, else derived from
// the topics), CHATBOT_CACHE_REFRESH and USER_ACTIVITY_PERIOD. set is the process's
// instances (nil builds them); nc and m may be nil.
func FromConfig(cfg config.Config, db *store.DB, set *instances.Set, nc *nats.Conn, subjects events.Subjects, log *slog.Logger, m *metrics.Metrics) (*Discoverer, error) {
	fields, err := FieldsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if set == nil {
		o, err := instances.OptionsFor(cfg, db, log, m)
		if err != nil {
			return nil, err
		}
		if set, err = instances.New(cfg, ratelimit.NewShared(db), o); err != nil {
			return nil, err
		}
	}
	// Infinity runs the discovery queries as the tenant saved them, timeframe
	// included; the V6 driver puts the period in their NXQL forms itself.
	var infinity []string
	for _, in := range cfg.Instances {
		if !in.IsV6() {
			infinity = append(infinity, in.Name)
		}
	}
	if window, _ := config.ParseDuration(QueryWindow, false); cfg.Cache.UserActivityPeriod.D() > window && len(infinity) > 0 && log != nil {
		log.Warn("the saved discovery queries select less than USER_ACTIVITY_PERIOD: widen their timeframe in the tenants",
			"instances", infinity, "query_window", QueryWindow, "user_activity_period", cfg.Cache.UserActivityPeriod.D().String())
	}
	return NewDiscoverer(Config{
		DB: db, Instances: set, Fields: fields, Refresh: cfg.Cache.Refresh.D(), Period: cfg.Cache.UserActivityPeriod.D(),
		Conn: nc, Subjects: subjects, Log: log, Metrics: m,
	})
}

// FieldsFromConfig is the cached-field list of a configuration.
func FieldsFromConfig(cfg config.Config) ([]string, error) {
	var override []string
	if cfg.CachedFieldsFile != "" {
		var err error
		if override, err = LoadCachedFields(cfg.CachedFieldsFile); err != nil {
			return nil, err
		}
	}
	set, err := topic.FilesOf(cfg).Load()
	if err != nil {
		return nil, fmt.Errorf("cached fields: %w", err)
	}
	return CachedFields(set, override)
}
