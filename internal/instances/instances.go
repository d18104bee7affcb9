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
	"github.com/dexbridge/dexbridge/internal/ratelimit"
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

// NQLKey and ActionsKey name an instance's shared limiters.
func NQLKey(instance string) string     { return "nql:" + instance }
func ActionsKey(instance string) string { return "act:" + instance }

// New builds a client per instance of cfg, limited through limiters.
func New(cfg config.Config, limiters *ratelimit.Shared, o Options) (*Set, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{byName: map[string]*Instance{}}
	for _, in := range cfg.Instances {
		if in.IsV6() {
			return nil, fmt.Errorf("instance %s: type v6 has no driver yet", in.Name)
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
