// Package config loads dexbridge's configuration: one YAML file (checked against
// schemas/config/dexbridge.json) plus environment variables, which win. Defaults live
// in Default; Validate names the bad key and, where one exists, its variable.
package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is the configuration of one dexbridge process.
type Config struct {
	Listen            string     `yaml:"listen"`              // LISTEN_ADDR
	MetricsListen     string     `yaml:"metrics_listen"`      // METRICS_ADDR: admin address of processes without the ingress
	AllowInsecureHTTP bool       `yaml:"allow_insecure_http"` // plain HTTP on a non-loopback address
	TLS               TLS        `yaml:"tls"`
	LogLevel          string     `yaml:"log_level"` // LOG_LEVEL
	DataDir           string     `yaml:"data_dir"`  // DEXBRIDGE_DATA_DIR
	NATS              NATS       `yaml:"nats"`
	DatabaseURL       Secret     `yaml:"database_url"` // DATABASE_URL
	Database          Database   `yaml:"database"`     // pool settings, see database.go
	TopicsDir         string     `yaml:"topics_dir"`
	QueriesFile       string     `yaml:"queries_file"`
	RemoteActionsFile string     `yaml:"remote_actions_file"`
	CachedFieldsFile  string     `yaml:"cached_fields_file"` // device fields to cache instead of those derived from the topics
	RequestTimeout    Duration   `yaml:"request_timeout"`    // ingress to worker, per request
	MaxInFlight       int        `yaml:"max_in_flight"`      // MAX_IN_FLIGHT: requests an ingress process has waiting on workers; beyond, 503 at once
	MaxConnections    int        `yaml:"max_connections"`    // MAX_CONNECTIONS: connections an ingress process serves at once; beyond, 503 at once
	ListenBacklog     int        `yaml:"listen_backlog"`     // LISTEN_BACKLOG: connections the kernel holds for the ingress before it accepts them
	Admission         Admission  `yaml:"admission"`          // API requests an ingress process serves at once; see admission.go
	ShutdownTimeout   Duration   `yaml:"shutdown_timeout"`   // in-flight work gets this long to finish
	Workers           Workers    `yaml:"workers"`
	Cache             Cache      `yaml:"cache"`
	Diagnosis         Diagnosis  `yaml:"diagnosis"`
	Presence          Presence   `yaml:"presence"`
	Limits            Limits     `yaml:"limits"`
	Executions        Executions `yaml:"executions"` // see executions.go
	Instances         []Instance `yaml:"instances"`
	Admin             Admin      `yaml:"admin"`
	Webhooks          Webhooks   `yaml:"webhooks"`  // see webhooks.go
	Proactive         Proactive  `yaml:"proactive"` // see webhooks.go
	Retention         Retention  `yaml:"retention"` // see retention.go
	CORS              CORS       `yaml:"cors"`      // CORS_ALLOWED_ORIGINS
}

// CORS lets web pages of other origins call the API from a browser: none by default.
type CORS struct {
	// AllowedOrigins are exact origins (https://portal.example.com, with a port when
	// it is not the scheme's) or "*" for any (CORS_ALLOWED_ORIGINS, comma-separated).
	// Credentials (cookies) are never allowed: API keys travel in headers.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Admin is the operator's credential for the API-key endpoints (HTTP Basic), beside
// the instances' Nexthink credentials. The password comes only from
// DEXBRIDGE_ADMIN_PASSWORD or password_file.
type Admin struct {
	Username     string `yaml:"username"` // DEXBRIDGE_ADMIN_USERNAME
	PasswordFile string `yaml:"password_file"`
	Password     Secret `yaml:"-"` // DEXBRIDGE_ADMIN_PASSWORD
}

// TLS enables HTTPS on the ingress when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"` // TLS_CERT_FILE
	KeyFile  string `yaml:"key_file"`  // TLS_KEY_FILE
}

// Workers bounds how much work each worker process does at once.
type Workers struct {
	Concurrency int `yaml:"concurrency"` // WORKER_CONCURRENCY: handlers running at once per endpoint
}

// Cache drives discovery.
type Cache struct {
	Refresh            Duration `yaml:"refresh"`              // CHATBOT_CACHE_REFRESH
	UserActivityPeriod Duration `yaml:"user_activity_period"` // USER_ACTIVITY_PERIOD
	// MaxAge is how old a device's cached fields may be and still answer a saved query
	// (CACHE_MAX_AGE); zero means twice Refresh.
	MaxAge Duration `yaml:"max_age"`
	// UnknownIdentifierTTL is how long live look-ups (identification, a diagnosis's or
	// a remote action's device) remember that the instances did not know an
	// identifier, and do not ask them again (UNKNOWN_IDENTIFIER_TTL); zero asks every time.
	UnknownIdentifierTTL Duration `yaml:"unknown_identifier_ttl"`
}

// FreshFor is how old cached fields may be and still answer a saved query.
func (c Cache) FreshFor() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge.D()
	}
	return 2 * c.Refresh.D()
}

// Diagnosis configures the topic worker's diagnoses.
type Diagnosis struct {
	// RefreshTimeout bounds the wait for a refresh's data-collection remote actions
	// (DIAGNOSIS_REFRESH_TIMEOUT).
	RefreshTimeout Duration `yaml:"refresh_timeout"`
}

// Presence says when a device counts as online: Nexthink heard from it within
// OnlineWithin (PRESENCE_ONLINE_WITHIN). Waits for a device that is not online end at
// once, since it may not come back for days.
type Presence struct {
	OnlineWithin Duration `yaml:"online_within"`
}

// Limits protect the cache and each instance from overload: calls beyond them are
// refused with 429 and Retry-After.
type Limits struct {
	CacheRequestsPerSecond  float64 `yaml:"cache_requests_per_second"`  // MAX_CACHE_REQUESTS_PER_SECOND
	EngineRequestsPerSecond float64 `yaml:"engine_requests_per_second"` // MAX_ENGINE_REQUESTS_PER_SECOND, NQL per instance
	PortalRequestsPerSecond float64 `yaml:"portal_requests_per_second"` // MAX_PORTAL_REQUESTS_PER_SECOND, remote actions per instance
}

// Instance is one Nexthink tenant: an Infinity instance (type infinity, the
// default: api_url and token_url) or a V6 installation (type v6: portal_url and,
// optionally, a fixed engines list). Credentials never come from this file: they
// come from NEXTHINK_<NAME>_CLIENT_ID / NEXTHINK_<NAME>_CLIENT_SECRET (Infinity) or
// NEXTHINK_<NAME>_USERNAME / NEXTHINK_<NAME>_PASSWORD (V6), or from credentials_file.
type Instance struct {
	Name            string     `yaml:"name"`
	Type            string     `yaml:"type"` // InstanceInfinity (default) or InstanceV6
	APIURL          string     `yaml:"api_url"`
	TokenURL        string     `yaml:"token_url"`
	PortalURL       string     `yaml:"portal_url"`
	Engines         []V6Engine `yaml:"engines"` // V6: the Engines, instead of the Portal's list
	CredentialsFile string     `yaml:"credentials_file"`
	Limits          *Limits    `yaml:"limits"` // per-instance override of engine and portal limits

	ClientID     string `yaml:"-"`
	ClientSecret Secret `yaml:"-"`
	Username     string `yaml:"-"` // V6 Basic credentials of the Portal and the Engines
	Password     Secret `yaml:"-"`
}

// Types of instance.
const (
	InstanceInfinity = "infinity"
	InstanceV6       = "v6"
)

// V6Engine is an Engine of a V6 instance: its name and its Web API's base URL
// (https://engine-1.example.com:1671).
type V6Engine struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	UID  string `yaml:"uid"` // the Engine's database UID, for the Portal's engineDatabaseUids
}

// IsV6 reports whether the instance is a V6 installation.
func (in Instance) IsV6() bool { return in.Type == InstanceV6 }

// Default is the configuration before the file and the environment apply.
func Default() Config {
	return Config{
		Listen:            "127.0.0.1:8090",
		LogLevel:          "info",
		DataDir:           ".data",
		NATS:              NATS{Listen: "127.0.0.1:4223", SubjectPrefix: "dexbridge", Replicas: 1},
		TopicsDir:         "topics",
		QueriesFile:       "config/queries.yaml",
		RemoteActionsFile: "config/remote_actions.yaml",
		RequestTimeout:    Duration(30 * time.Second),
		MaxInFlight:       256,
		MaxConnections:    1024,
		ListenBacklog:     256,
		Admission:         defaultAdmission(),
		ShutdownTimeout:   Duration(20 * time.Second),
		Workers:           Workers{Concurrency: 64},
		Cache: Cache{
			Refresh:              Duration(time.Hour),
			UserActivityPeriod:   Duration(30 * 24 * time.Hour),
			UnknownIdentifierTTL: Duration(5 * time.Minute),
		},
		Diagnosis:  Diagnosis{RefreshTimeout: Duration(60 * time.Second)},
		Presence:   Presence{OnlineWithin: Duration(time.Hour)},
		Executions: defaultExecutions(),
		Limits: Limits{
			CacheRequestsPerSecond:  500,
			EngineRequestsPerSecond: 40,
			PortalRequestsPerSecond: 20,
		},
		Webhooks:  defaultWebhooks(),
		Proactive: defaultProactive(),
		Retention: defaultRetention(),
	}
}

// InstanceNames names the configured instances, in order.
func (c Config) InstanceNames() []string {
	names := make([]string, len(c.Instances))
	for k, in := range c.Instances {
		names[k] = in.Name
	}
	return names
}

// InstanceLimits is the effective limits of an instance.
func (c Config) InstanceLimits(in Instance) Limits {
	l := c.Limits
	if in.Limits != nil {
		if in.Limits.EngineRequestsPerSecond > 0 {
			l.EngineRequestsPerSecond = in.Limits.EngineRequestsPerSecond
		}
		if in.Limits.PortalRequestsPerSecond > 0 {
			l.PortalRequestsPerSecond = in.Limits.PortalRequestsPerSecond
		}
	}
	return l
}

// Error names the configuration key (and its environment variable) that is wrong.
type Error struct {
	Key    string
	Env    string
	Reason string
}

func (e *Error) Error() string {
	if e.Env != "" {
		return fmt.Sprintf("%s (%s): %s", e.Key, e.Env, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Reason)
}

// Validate checks what the schema cannot: values that depend on each other or on
// parsing (addresses, URLs).
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &Error{Key: "listen", Env: "LISTEN_ADDR", Reason: fmt.Sprintf("want host:port, got %q", c.Listen)}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return &Error{Key: "metrics_listen", Env: "METRICS_ADDR", Reason: fmt.Sprintf("want host:port, got %q", c.MetricsListen)}
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return &Error{Key: "tls", Env: "TLS_CERT_FILE/TLS_KEY_FILE", Reason: "set both the certificate and the key, or neither"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Key: "log_level", Env: "LOG_LEVEL", Reason: fmt.Sprintf("want debug, info, warn or error, got %q", c.LogLevel)}
	}
	if err := c.NATS.validate(); err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return &Error{Key: "database_url", Env: "DATABASE_URL", Reason: "required"}
	}
	if u, err := url.Parse(string(c.DatabaseURL)); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return &Error{Key: "database_url", Env: "DATABASE_URL", Reason: "want a postgres:// URL"}
	}
	positive := []struct {
		key, env string
		v        float64
	}{
		{"request_timeout", "", c.RequestTimeout.Seconds()},
		{"max_in_flight", "MAX_IN_FLIGHT", float64(c.MaxInFlight)},
		{"max_connections", "MAX_CONNECTIONS", float64(c.MaxConnections)},
		{"listen_backlog", "LISTEN_BACKLOG", float64(c.ListenBacklog)},
		{"shutdown_timeout", "", c.ShutdownTimeout.Seconds()},
		{"workers.concurrency", "WORKER_CONCURRENCY", float64(c.Workers.Concurrency)},
		{"cache.refresh", "CHATBOT_CACHE_REFRESH", c.Cache.Refresh.Seconds()},
		{"cache.user_activity_period", "USER_ACTIVITY_PERIOD", c.Cache.UserActivityPeriod.Seconds()},
		{"diagnosis.refresh_timeout", "DIAGNOSIS_REFRESH_TIMEOUT", c.Diagnosis.RefreshTimeout.Seconds()},
		{"presence.online_within", "PRESENCE_ONLINE_WITHIN", c.Presence.OnlineWithin.Seconds()},
		{"limits.cache_requests_per_second", "MAX_CACHE_REQUESTS_PER_SECOND", c.Limits.CacheRequestsPerSecond},
		{"limits.engine_requests_per_second", "MAX_ENGINE_REQUESTS_PER_SECOND", c.Limits.EngineRequestsPerSecond},
		{"limits.portal_requests_per_second", "MAX_PORTAL_REQUESTS_PER_SECOND", c.Limits.PortalRequestsPerSecond},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return &Error{Key: p.key, Env: p.env, Reason: "must be greater than zero"}
		}
	}
	if c.Cache.MaxAge < 0 {
		return &Error{Key: "cache.max_age", Env: "CACHE_MAX_AGE", Reason: "must not be negative"}
	}
	if c.Cache.UnknownIdentifierTTL < 0 {
		return &Error{Key: "cache.unknown_identifier_ttl", Env: "UNKNOWN_IDENTIFIER_TTL", Reason: "must not be negative"}
	}
	if (c.Admin.Username == "") != (c.Admin.Password == "") {
		return &Error{Key: "admin", Env: "DEXBRIDGE_ADMIN_USERNAME/DEXBRIDGE_ADMIN_PASSWORD", Reason: "set both the admin username and password, or neither"}
	}
	if c.Admin.Password != "" && len(c.Admin.Password) < 12 {
		return &Error{Key: "admin.password", Env: "DEXBRIDGE_ADMIN_PASSWORD", Reason: "use at least 12 characters"}
	}
	if err := c.validateWebhooks(); err != nil {
		return err
	}
	if err := c.validateExecutions(); err != nil {
		return err
	}
	if err := c.validateDatabase(); err != nil {
		return err
	}
	if err := c.validateRetention(); err != nil {
		return err
	}
	if err := c.validateAdmission(); err != nil {
		return err
	}
	for i, o := range c.CORS.AllowedOrigins {
		if !validOrigin(o) {
			return &Error{Key: fmt.Sprintf("cors.allowed_origins[%d]", i), Env: "CORS_ALLOWED_ORIGINS",
				Reason: fmt.Sprintf("want an origin such as https://portal.example.com (scheme, host, optional port, no path) or *, got %q", o)}
		}
	}
	seen := map[string]bool{}
	for i, in := range c.Instances {
		key := fmt.Sprintf("instances[%d]", i)
		if seen[in.Name] {
			return &Error{Key: key + ".name", Reason: fmt.Sprintf("duplicate instance %q", in.Name)}
		}
		seen[in.Name] = true
		if err := in.validate(key); err != nil {
			return err
		}
	}
	return nil
}

// validate checks one instance's keys and credentials for its type.
func (in Instance) validate(key string) error {
	httpURL := func(k, v string) error {
		pu, err := url.Parse(v)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return &Error{Key: key + "." + k, Reason: fmt.Sprintf("want an http(s) URL, got %q", v)}
		}
		return nil
	}
	switch in.Type {
	case "", InstanceInfinity:
		for _, u := range []struct{ key, v string }{{"api_url", in.APIURL}, {"token_url", in.TokenURL}} {
			if err := httpURL(u.key, u.v); err != nil {
				return err
			}
		}
		if in.ClientID == "" || in.ClientSecret == "" {
			return &Error{Key: key, Env: CredentialEnv(in.Name, "CLIENT_ID") + "/" + CredentialEnv(in.Name, "CLIENT_SECRET"),
				Reason: fmt.Sprintf("instance %q has no credentials: set the variables or credentials_file", in.Name)}
		}
	case InstanceV6:
		if err := httpURL("portal_url", in.PortalURL); err != nil {
			return err
		}
		names := map[string]bool{}
		for k, e := range in.Engines {
			ek := fmt.Sprintf("engines[%d]", k)
			if e.Name == "" || names[e.Name] {
				return &Error{Key: key + "." + ek + ".name", Reason: fmt.Sprintf("want a unique engine name, got %q", e.Name)}
			}
			names[e.Name] = true
			if err := httpURL(ek+".url", e.URL); err != nil {
				return err
			}
		}
		if in.Username == "" || in.Password == "" {
			return &Error{Key: key, Env: CredentialEnv(in.Name, "USERNAME") + "/" + CredentialEnv(in.Name, "PASSWORD"),
				Reason: fmt.Sprintf("instance %q has no credentials: set the variables or credentials_file", in.Name)}
		}
	default:
		return &Error{Key: key + ".type", Reason: fmt.Sprintf("want %s or %s, got %q", InstanceInfinity, InstanceV6, in.Type)}
	}
	return nil
}

// validOrigin reports whether s is a browser origin (scheme://host[:port]) or "*".
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Opaque == "" &&
		u.Path == "" && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.ContainsAny(s, "*# ") &&
		u.Hostname() != "" && !strings.HasSuffix(u.Host, ":")
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true
	for _, r := range s {
		switch {
		case r == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}
