// Package instances is the set of configured Nexthink instances: one upstream
// driver each (package upstream: Infinity or V6, by the instance's type), whose
// query and remote-action calls take their budget from deployment-wide limiters
// (ratelimit.Shared, in PostgreSQL), so every replica of every service shares the
// instance's MAX_ENGINE_REQUESTS_PER_SECOND and MAX_PORTAL_REQUESTS_PER_SECOND.
package instances

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/upstream"
)

// Instance is one configured Nexthink instance.
type Instance struct {
	Name string
	Type string // upstream.TypeInfinity or upstream.TypeV6
	// Client is the instance's driver; nothing above it knows which product it calls.
	Client upstream.Driver
}

// Set is the configured instances, in configuration order.
type Set struct {
	list   []*Instance
	byName map[string]*Instance
}

// Options tune the clients; the zero value keeps the client's defaults.
type Options struct {
	// Configure, when set, may change each client's configuration before it is built
	// (tests share a clock with nxsim, benchmarks observe calls).
	Configure func(*nexthink.Config)
	Log       *slog.Logger
	// Metrics, when set, counts every upstream call by instance, call and status, and
	// every call the instance's limiters refuse.
	Metrics *metrics.Metrics
	// Forms are the saved queries' NXQL forms (topic.Files.NXQLForms), which V6
	// instances run; ConfigureV6 may change each V6 driver's configuration.
	Forms       []nxql.Form
	ConfigureV6 func(*nexthinkv6.Config)
	// DB, when set, shares the V6 drivers' routes and Engine health with every
	// other process (tables v6_routes and v6_engines); else each process keeps its own.
	DB *store.DB
}

// OptionsFor are the options a process builds its set with: the NXQL forms of the
// configured topics and queries when an instance is V6, and the V6 routes and Engine
// health shared through db.
func OptionsFor(cfg config.Config, db *store.DB, log *slog.Logger, m *metrics.Metrics) (Options, error) {
	o := Options{Log: log, Metrics: m, DB: db}
	for _, in := range cfg.Instances {
		if in.IsV6() {
			forms, err := topic.FilesOf(cfg).NXQLForms()
			if err != nil {
				return Options{}, err
			}
			o.Forms = forms.Forms
			break
		}
	}
	return o, nil
}

// Patience is how long a call to an instance may wait for the instance's rate limit
// (Wait) and how long it is retried on 429 and 5xx (RetryFor).
type Patience struct {
	Wait, RetryFor time.Duration
}

// Interactive is the patience of a call a chatbot waits for (identification, a
// diagnosis, a trigger): a short wait for the budget, bounded retries.
func Interactive() Patience { return Patience{Wait: 2 * time.Second, RetryFor: 10 * time.Second} }

// ClientWith is the instance's client with patience p.
func (i *Instance) ClientWith(p Patience) upstream.Driver {
	return i.Client.WithPolicy(p.Wait, p.RetryFor)
}

// NQLKey and ActionsKey name an instance's shared limiters; a V6 instance has one
// NQL limiter per Engine (EngineKey) and ActionsKey for its Portal.
func NQLKey(instance string) string            { return "nql:" + instance }
func ActionsKey(instance string) string        { return "act:" + instance }
func EngineKey(instance, engine string) string { return "nql:" + instance + "/" + engine }

// New builds a client per instance of cfg, limited through limiters.
func New(cfg config.Config, limiters *ratelimit.Shared, o Options) (*Set, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{byName: map[string]*Instance{}}
	for _, in := range cfg.Instances {
		if in.IsV6() {
			d, err := newV6(cfg, in, limiters, o, log)
			if err != nil {
				return nil, fmt.Errorf("instance %s: %w", in.Name, err)
			}
			i := &Instance{Name: in.Name, Type: upstream.TypeV6, Client: d}
			s.list = append(s.list, i)
			s.byName[in.Name] = i
			continue
		}
		l := cfg.InstanceLimits(in)
		nc := nexthink.Config{
			Instance: in.Name, APIURL: in.APIURL, TokenURL: in.TokenURL,
			ClientID: in.ClientID, ClientSecret: in.ClientSecret,
			NQL:     limiters.Limiter(NQLKey(in.Name), rate(l.EngineRequestsPerSecond)),
			Actions: limiters.Limiter(ActionsKey(in.Name), rate(l.PortalRequestsPerSecond)),
			Log:     log,
		}
		if m := o.Metrics; m != nil {
			nc.Observe = func(c nexthink.Call) { m.ObserveUpstream(c.Instance, c.Name, c.Status, c.Duration) }
			nc.NQL = ratelimit.Observed(nc.NQL, func(string) { m.RateLimited("nql") })
			nc.Actions = ratelimit.Observed(nc.Actions, func(string) { m.RateLimited("actions") })
		}
		if o.Configure != nil {
			o.Configure(&nc)
		}
		c, err := nexthink.New(nc)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", in.Name, err)
		}
		i := &Instance{Name: in.Name, Type: upstream.TypeInfinity, Client: upstream.Infinity(c)}
		s.list = append(s.list, i)
		s.byName[in.Name] = i
	}
	return s, nil
}

// newV6 builds the driver of a V6 instance: each Engine limited to the
// instance's engine rate, the Portal to its portal rate.
func newV6(cfg config.Config, in config.Instance, limiters *ratelimit.Shared, o Options, log *slog.Logger) (*nexthinkv6.Driver, error) {
	l := cfg.InstanceLimits(in)
	vc := nexthinkv6.Config{
		Instance: in.Name, PortalURL: in.PortalURL, Username: in.Username, Password: in.Password, Forms: o.Forms,
		EngineLimiter: func(engine string) nexthink.Limiter {
			lim := limiters.Limiter(EngineKey(in.Name, engine), rate(l.EngineRequestsPerSecond))
			if m := o.Metrics; m != nil {
				lim = ratelimit.Observed(lim, func(string) { m.RateLimited("nql") })
			}
			return lim
		},
		PortalLimiter:  limiters.Limiter(ActionsKey(in.Name), rate(l.PortalRequestsPerSecond)),
		ActivityPeriod: cfg.Cache.UserActivityPeriod.D(),
		Log:            log,
	}
	if o.DB != nil {
		vc.Memory = v6Memory{o.DB}
	}
	for _, e := range in.Engines {
		vc.Engines = append(vc.Engines, nexthinkv6.Engine{Name: e.Name, URL: e.URL, UID: e.UID})
	}
	if m := o.Metrics; m != nil {
		vc.Observe = func(c nexthink.Call) { m.ObserveUpstream(c.Instance, c.Name, c.Status, c.Duration) }
		vc.PortalLimiter = ratelimit.Observed(vc.PortalLimiter, func(string) { m.RateLimited("actions") })
	}
	if o.ConfigureV6 != nil {
		o.ConfigureV6(&vc)
	}
	return nexthinkv6.New(vc)
}

// rate allows bursts of one second's worth of calls.
func rate(perSecond float64) ratelimit.Rate {
	return ratelimit.Rate{PerSecond: perSecond, Burst: max(1, int(perSecond))}
}

// List returns the instances in configuration order.
func (s *Set) List() []*Instance { return s.list }

// Names returns the instances' names in configuration order.
func (s *Set) Names() []string {
	out := make([]string, len(s.list))
	for k, i := range s.list {
		out[k] = i.Name
	}
	return out
}

// Get returns the instance called name.
func (s *Set) Get(name string) (*Instance, bool) {
	i, ok := s.byName[name]
	return i, ok
}

// Close releases the clients' idle connections.
func (s *Set) Close() {
	for _, i := range s.list {
		i.Client.CloseIdleConnections()
	}
}
