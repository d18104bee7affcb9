package app

import (
	"context"

	"github.com/dexbridge/dexbridge/internal/admission"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
	"github.com/dexbridge/dexbridge/services/devices"
	"github.com/dexbridge/dexbridge/services/discovery"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/topics"
)

// component is a service `dexbridge run` can start. Front components take outside
// traffic and stop first.
type component struct {
	name  string
	front bool
	build func(*deps) (Runner, error)
}

func components() []component {
	return []component{
		{name: "ingress", front: true, build: buildIngress},
		{name: "topics", build: buildTopics},
		{name: "devices", build: buildDevices},
		{name: "discovery", build: buildDiscovery},
		{name: "remoteactions", build: buildRemoteActions},
		{name: "poller", build: buildPoller},
		{name: "webhooks", build: buildWebhooks},   // webhooks.go
		{name: "proactive", build: buildProactive}, // webhooks.go
		{name: "pruner", build: buildPruner},       // pruner.go
	}
}

func buildIngress(d *deps) (Runner, error) {
	receiver, err := webhookReceiver(d)
	if err != nil {
		return nil, err
	}
	subs, err := proactiveSubscriptions(d)
	if err != nil {
		return nil, err
	}
	return ingress.New(ingress.Options{
		Listen:            d.cfg.Listen,
		TLSCertFile:       d.cfg.TLS.CertFile,
		TLSKeyFile:        d.cfg.TLS.KeyFile,
		AllowInsecureHTTP: d.cfg.AllowInsecureHTTP,
		RPC:               d.rpc.WithMaxInFlight(d.cfg.MaxInFlight), // the ingress sheds load beyond this; workers calling workers do not
		MaxConnections:    d.cfg.MaxConnections,
		ListenBacklog:     d.cfg.ListenBacklog,
		Admission:         admissionController(d.cfg.Admission),
		Keys:              auth.NewKeys(store.New(d.db)),
		Credentials:       auth.NewCredentials(basicCredentials(d.cfg)),
		Limiters:          d.limiters(),
		Metrics:           d.metrics,
		Subjects:          d.subjects,
		Checks:            d.checks(),
		ShutdownTimeout:   d.cfg.ShutdownTimeout.D(),
		Log:               d.log.With("service", "ingress"),
		OnListen:          d.onListen,
		Webhooks:          receiver,
		Proactive:         proactiveFeed(d),
		Subscriptions:     subs,
		Events:            d.bus.Conn,
		RequestTimeout:    d.cfg.RequestTimeout.D(),
		RefreshTimeout:    d.cfg.Diagnosis.RefreshTimeout.D(),
		CORSOrigins:       d.cfg.CORS.AllowedOrigins,
	}), nil
}

// admissionController is the ingress's admission control as configured.
func admissionController(c config.Admission) *admission.Controller {
	queue := c.Queue
	if queue == 0 {
		queue = -1 // none, where admission.Config's zero is its default
	}
	return admission.New(admission.Config{Limit: c.MaxConcurrent, MinLimit: c.MinConcurrent, Queue: queue,
		Target: c.Target.D(), Interval: c.Interval.D(), Adaptive: c.Adaptive})
}

func buildTopics(d *deps) (Runner, error) {
	db := store.New(d.db)
	set, err := d.instances()
	if err != nil {
		return nil, err
	}
	var live []wrapper.Instance
	for _, in := range set.List() {
		live = append(live, wrapper.Instance{Name: in.Name, Live: in.ClientWith(instances.Interactive())})
	}
	return topics.New(topics.Options{
		Conn: d.bus.Conn, Subjects: d.subjects, Load: topic.FilesOf(d.cfg).Load, Instances: live,
		Diagnoses: db, Executions: db, Cache: db, CacheLimiter: d.cacheLimiter(), Config: topics.ConfigFrom(d.cfg),
		Log: d.log.With("service", "topics"), Version: d.version, Metrics: d.metrics,
	})
}

func buildDevices(d *deps) (Runner, error) {
	db := store.New(d.db)
	set, err := d.instances()
	if err != nil {
		return nil, err
	}
	return devices.New(devices.Options{
		Conn: d.bus.Conn, Subjects: d.subjects, Cache: db, Instances: set, CacheLimiter: d.cacheLimiter(),
		Metrics: d.metrics, Config: devices.ConfigFrom(d.cfg), Log: d.log, Version: d.version,
	})
}

func buildDiscovery(d *deps) (Runner, error) {
	set, err := d.instances()
	if err != nil {
		return nil, err
	}
	disc, err := discovery.FromConfig(d.cfg, store.New(d.db), set, d.bus.Conn, d.subjects, d.log, d.metrics)
	if err != nil {
		return nil, err
	}
	return discovery.New(discovery.Options{
		Discoverer: disc, DB: store.New(d.db), Conn: d.bus.Conn, Subjects: d.subjects,
		Refresh: d.cfg.Cache.Refresh.D(), ShutdownTimeout: d.cfg.ShutdownTimeout.D(), Log: d.log, Version: d.version,
	}), nil
}

// basicCredentials are those allowed to manage API keys: each instance's Nexthink API
// credentials (as the V6 SDK did) and the admin credential.
func basicCredentials(cfg config.Config) []auth.Credential {
	var out []auth.Credential
	for _, in := range cfg.Instances {
		out = append(out, auth.Credential{Who: "instance:" + in.Name, User: in.ClientID, Password: in.ClientSecret.Reveal()})
	}
	if cfg.Admin.Username != "" {
		out = append(out, auth.Credential{Who: "admin", User: cfg.Admin.Username, Password: cfg.Admin.Password.Reveal()})
	}
	return out
}

// checks are the readiness checks of a process: NATS and PostgreSQL reachable.
func (d *deps) checks() []ingress.Check {
	return []ingress.Check{
		{Name: "nats", Fn: func(context.Context) error { return d.bus.Ready() }},
		{Name: "postgres", Fn: d.db.Ping},
	}
}

// cacheLimiter is MAX_CACHE_REQUESTS_PER_SECOND, shared by every replica: each
// identification and each diagnosis's device resolution takes one read from it. The
// services of a process (topics and devices) take it from one limiter.
func (d *deps) cacheLimiter() ratelimit.Limiter {
	lim := d.cfg.Limits.CacheRequestsPerSecond
	return ratelimit.Observed(d.limiters().Limiter(ratelimit.CacheKey, ratelimit.Rate{PerSecond: lim, Burst: max(1, int(lim))}),
		func(apiKey string) { d.metrics.RateLimited("cache"); d.metrics.KeyRateLimited("cache", apiKey) })
}
