package nexthinkv6

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/upstream"
)

// Defaults of Config.
const (
	DefaultMaxWait        = 2 * time.Second
	DefaultRetryFor       = 10 * time.Second
	DefaultCallTimeout    = 30 * time.Second
	DefaultEngineListTTL  = time.Minute
	DefaultRouteTTL       = 10 * time.Minute
	DefaultRouteCacheTTL  = 30 * time.Second
	DefaultHealthEvery    = 15 * time.Second
	DefaultDownAfter      = 3
	DefaultProbeEvery     = 30 * time.Second
	DefaultTimeoutSeconds = 3600
)

// Engine is one Engine of the installation.
type Engine struct {
	Name string
	URL  string // base URL of its Web API, https://engine-1.example.com:1671
	UID  string // database UID, for engineDatabaseUids; empty when unknown
}

// Config configures the driver of one V6 instance.
type Config struct {
	Instance  string
	PortalURL string
	// Engines, when set, is the fixed Engine list; else the Portal's.
	Engines           []Engine
	Username          string
	Password          config.Secret
	Forms             []nxql.Form // the NXQL forms of the saved queries, by id
	EngineLimiter     func(engine string) nexthink.Limiter
	PortalLimiter     nexthink.Limiter
	HTTPClient        *http.Client
	MaxWait, RetryFor time.Duration
	CallTimeout       time.Duration
	EngineListTTL     time.Duration
	RouteTTL          time.Duration
	// Memory, when set, shares routes and Engine health with the other processes
	// (PostgreSQL); RouteCacheTTL is how long a route read there is trusted here
	// before it is read again (30s), HealthEvery how often an Engine that keeps
	// answering has its last success recorded there (15s).
	Memory            Memory
	RouteCacheTTL     time.Duration
	HealthEvery       time.Duration
	DownAfter         int           // consecutive failures that mark an Engine down (3)
	ProbeEvery        time.Duration // how often a down Engine is tried again (30s)
	MaxTimeoutSeconds int           // the run's timeoutSeconds ceiling (3600)
	// ActivityPeriod replaces the window of the forms that declare one (discovery's
	// USER_ACTIVITY_PERIOD); 0 keeps the forms' own.
	ActivityPeriod time.Duration
	Observe        func(nexthink.Call)
	Log            *slog.Logger
	Clock          func() time.Time
}

// Driver calls one V6 installation. It is safe for concurrent use.
type Driver struct {
	*state
	maxWait, retryFor time.Duration
}

// state is what every policy view of a driver shares.
type state struct {
	cfg    Config
	portal *url.URL
	forms  map[string]*nxql.Form
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	engines  []*engineState
	listedAt time.Time
	listErr  error
	limiters map[string]nexthink.Limiter
	routes   map[string]route
	// unreported is the Engine health not yet sent to Memory; reporting is true
	// while a writer sends it.
	unreported map[string]EngineHealth
	reporting  bool
	// listed is the Engine list last recorded in Memory (names joined by NUL).
	listed string
}

var _ upstream.Driver = (*Driver)(nil)

// New checks cfg and returns a driver; it makes no call.
func New(cfg Config) (*Driver, error) {
	if cfg.Instance == "" {
		return nil, errors.New("nexthink v6 driver: instance name is empty")
	}
	portal, err := baseURL(cfg.PortalURL)
	if err != nil {
		return nil, fmt.Errorf("nexthink v6 driver %s: portal url: %w", cfg.Instance, err)
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, fmt.Errorf("nexthink v6 driver %s: username and password are required", cfg.Instance)
	}
	s := &state{cfg: cfg, portal: portal, forms: map[string]*nxql.Form{}, limiters: map[string]nexthink.Limiter{},
		routes: map[string]route{}}
	schema := nxql.NewSchema()
	for k := range cfg.Forms {
		f := &cfg.Forms[k]
		if err := f.Check(schema); err != nil {
			return nil, fmt.Errorf("nexthink v6 driver %s: NXQL form of %s: %w", cfg.Instance, f.ID, err)
		}
		s.forms[f.ID] = f
	}
	for _, e := range cfg.Engines {
		if _, err := baseURL(e.URL); err != nil {
			return nil, fmt.Errorf("nexthink v6 driver %s: engine %s: %w", cfg.Instance, e.Name, err)
		}
		s.engines = append(s.engines, &engineState{Engine: e})
	}
	s.http = cfg.HTTPClient
	if s.http == nil {
		s.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	s.log = cfg.Log
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("instance", cfg.Instance)
	s.now = cfg.Clock
	if s.now == nil {
		s.now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.cfg.CallTimeout, DefaultCallTimeout)
	def(&s.cfg.EngineListTTL, DefaultEngineListTTL)
	def(&s.cfg.RouteTTL, DefaultRouteTTL)
	def(&s.cfg.RouteCacheTTL, DefaultRouteCacheTTL)
	def(&s.cfg.HealthEvery, DefaultHealthEvery)
	def(&s.cfg.ProbeEvery, DefaultProbeEvery)
	if s.cfg.DownAfter <= 0 {
		s.cfg.DownAfter = DefaultDownAfter
	}
	if s.cfg.MaxTimeoutSeconds <= 0 {
		s.cfg.MaxTimeoutSeconds = DefaultTimeoutSeconds
	}
	if s.cfg.PortalLimiter == nil {
		s.cfg.PortalLimiter = unlimited{}
	}
	d := &Driver{state: s, maxWait: cfg.MaxWait, retryFor: cfg.RetryFor}
	def(&d.maxWait, DefaultMaxWait)
	def(&d.retryFor, DefaultRetryFor)
	return d, nil
}

// Instance is the instance's name.
func (d *Driver) Instance() string { return d.cfg.Instance }

// WithPolicy returns the driver with other patience; Engines, their health, the
// routes and the limiters stay shared.
func (d *Driver) WithPolicy(maxWait, retryFor time.Duration) upstream.Driver {
	v := *d
	if maxWait > 0 {
		v.maxWait = maxWait
	}
	if retryFor > 0 {
		v.retryFor = retryFor
	}
	return &v
}

// CloseIdleConnections closes the HTTP client's idle connections.
func (d *Driver) CloseIdleConnections() { d.http.CloseIdleConnections() }

// HasForm reports whether the driver can run the saved query id.
func (d *Driver) HasForm(id string) bool { _, ok := d.forms[id]; return ok }

// limiter is the Engine's limiter, made once.
func (s *state) limiter(engine string) nexthink.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[engine]
	if !ok {
		l = unlimited{}
		if s.cfg.EngineLimiter != nil {
			l = s.cfg.EngineLimiter(engine)
		}
		s.limiters[engine] = l
	}
	return l
}

// unlimited grants every call at once.
type unlimited struct{}

func (unlimited) Take(ctx context.Context, _ time.Duration) (time.Duration, error) {
	return 0, ctx.Err()
}

var _ ratelimit.Limiter = unlimited{}

// baseURL parses an absolute http(s) base URL without user info, query or fragment.
func baseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(s), "/"))
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want an absolute http or https URL without user info, query or fragment")
	}
	return u, nil
}
