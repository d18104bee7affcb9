package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Variable is an environment variable that overrides a configuration key.
type Variable struct {
	Name        string
	Key         string
	Description string
	set         func(*Config, string) error
}

// Variables lists every variable Load reads (besides instance credentials), in the
// order the README documents them.
func Variables() []Variable {
	return []Variable{
		{"DATABASE_URL", "database_url", "PostgreSQL connection URL", func(c *Config, s string) error { c.DatabaseURL = Secret(s); return nil }},
		{"DATABASE_MAX_CONNS", "database.max_conns", "most connections in a process's PostgreSQL pool", integer(func(c *Config) *int { return &c.Database.MaxConns })},
		{"DATABASE_MIN_CONNS", "database.min_conns", "connections a process's PostgreSQL pool keeps open", integer(func(c *Config) *int { return &c.Database.MinConns })},
		{"DATABASE_STATEMENT_TIMEOUT", "database.statement_timeout", "longest a PostgreSQL statement may run", duration(false, func(c *Config) *Duration { return &c.Database.StatementTimeout })},
		{"NATS_URL", "nats.url", "NATS server to join; unset starts an embedded server", str(func(c *Config) *string { return &c.NATS.URL })},
		{"NATS_SUBJECT_PREFIX", "nats.subject_prefix", "prefix of every subject, stream and bucket", str(func(c *Config) *string { return &c.NATS.SubjectPrefix })},
		{"NATS_REPLICAS", "nats.replicas", "JetStream replicas of every stream dexbridge creates: 1 on one machine, 3 on a cluster", integer(func(c *Config) *int { return &c.NATS.Replicas })},
		{"NATS_TLS_CA_FILE", "nats.tls.ca_file", "CA (PEM) that signs the NATS server's certificate", str(func(c *Config) *string { return &c.NATS.TLS.CAFile })},
		{"NATS_TLS_CERT_FILE", "nats.tls.cert_file", "client certificate (PEM) for NATS; the embedded server's own certificate", str(func(c *Config) *string { return &c.NATS.TLS.CertFile })},
		{"NATS_TLS_KEY_FILE", "nats.tls.key_file", "private key (PEM) of nats.tls.cert_file", str(func(c *Config) *string { return &c.NATS.TLS.KeyFile })},
		{"NATS_CREDS_FILE", "nats.creds_file", "NATS credentials file (JWT and NKey seed)", str(func(c *Config) *string { return &c.NATS.CredsFile })},
		{"NATS_NKEY_SEED_FILE", "nats.nkey_seed_file", "file holding the NKey seed that signs the NATS connection", str(func(c *Config) *string { return &c.NATS.NKeySeedFile })},
		{"NATS_USER", "nats.user", "NATS user, with NATS_PASSWORD", str(func(c *Config) *string { return &c.NATS.User })},
		{"NATS_PASSWORD", "nats.password_file", "NATS password (or a file named by nats.password_file)", func(c *Config, s string) error { c.NATS.Password = Secret(s); return nil }},
		{"NATS_TOKEN", "nats.token_file", "NATS token (or a file named by nats.token_file)", func(c *Config, s string) error { c.NATS.Token = Secret(s); return nil }},
		{"LISTEN_ADDR", "listen", "ingress address", str(func(c *Config) *string { return &c.Listen })},
		{"METRICS_ADDR", "metrics_listen", "address of /metrics, /healthz and /readyz in processes without the ingress", str(func(c *Config) *string { return &c.MetricsListen })},
		{"ALLOW_INSECURE_HTTP", "allow_insecure_http", "allow plain HTTP on a non-loopback address", boolean(func(c *Config) *bool { return &c.AllowInsecureHTTP })},
		{"TLS_CERT_FILE", "tls.cert_file", "HTTPS certificate (PEM)", str(func(c *Config) *string { return &c.TLS.CertFile })},
		{"TLS_KEY_FILE", "tls.key_file", "HTTPS private key (PEM)", str(func(c *Config) *string { return &c.TLS.KeyFile })},
		{"LOG_LEVEL", "log_level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"DEXBRIDGE_DATA_DIR", "data_dir", "state directory (embedded NATS data)", str(func(c *Config) *string { return &c.DataDir })},
		{"TOPICS_DIR", "topics_dir", "folder of topic YAML files", str(func(c *Config) *string { return &c.TopicsDir })},
		{"MAX_IN_FLIGHT", "max_in_flight", "requests one ingress process has waiting on workers at once; beyond, 503", integer(func(c *Config) *int { return &c.MaxInFlight })},
		{"MAX_CONNECTIONS", "max_connections", "connections one ingress process serves at once; beyond, 503", integer(func(c *Config) *int { return &c.MaxConnections })},
		{"LISTEN_BACKLOG", "listen_backlog", "connections the kernel holds for the ingress before it accepts them; beyond, a new connection's handshake is dropped and retried by its client", integer(func(c *Config) *int { return &c.ListenBacklog })},
		{"ADMISSION_MAX_CONCURRENT", "admission.max_concurrent", "API requests one ingress process serves at once (the adaptive limit's ceiling); beyond, they wait in a short queue or get 503", integer(func(c *Config) *int { return &c.Admission.MaxConcurrent })},
		{"ADMISSION_QUEUE", "admission.queue", "API requests that may wait for admission; beyond, 503 at once", integer(func(c *Config) *int { return &c.Admission.Queue })},
		{"ADMISSION_TARGET", "admission.target", "queue delay tolerated while the admission queue stands; a request waiting longer gets 503", duration(false, func(c *Config) *Duration { return &c.Admission.Target })},
		{"ADMISSION_INTERVAL", "admission.interval", "how long the admission queue may go without emptying before it counts as standing, and the longest wait until then", duration(false, func(c *Config) *Duration { return &c.Admission.Interval })},
		{"ADMISSION_ADAPTIVE", "admission.adaptive", "let the admission limit follow the observed latency between admission.min_concurrent and admission.max_concurrent", boolean(func(c *Config) *bool { return &c.Admission.Adaptive })},
		{"WORKER_CONCURRENCY", "workers.concurrency", "requests a worker endpoint handles at once", integer(func(c *Config) *int { return &c.Workers.Concurrency })},
		{"DEXBRIDGE_ADMIN_USERNAME", "admin.username", "operator user for the API-key endpoints (HTTP Basic)", str(func(c *Config) *string { return &c.Admin.Username })},
		{"DEXBRIDGE_ADMIN_PASSWORD", "admin.password_file", "operator password (or a file named by admin.password_file)", func(c *Config, s string) error { c.Admin.Password = Secret(s); return nil }},
		{"CHATBOT_CACHE_REFRESH", "cache.refresh", "discovery period (legacy name)", duration(false, func(c *Config) *Duration { return &c.Cache.Refresh })},
		{"USER_ACTIVITY_PERIOD", "cache.user_activity_period", "activity window kept in the cache; a bare number is days (legacy name)", duration(true, func(c *Config) *Duration { return &c.Cache.UserActivityPeriod })},
		{"CACHE_MAX_AGE", "cache.max_age", "how old cached fields may be and still answer a saved query; unset: twice CHATBOT_CACHE_REFRESH", duration(false, func(c *Config) *Duration { return &c.Cache.MaxAge })},
		{"UNKNOWN_IDENTIFIER_TTL", "cache.unknown_identifier_ttl", "how long identification, diagnoses and remote actions remember an identifier no instance knew, and do not ask again; 0s asks every time", duration(false, func(c *Config) *Duration { return &c.Cache.UnknownIdentifierTTL })},
		{"DIAGNOSIS_REFRESH_TIMEOUT", "diagnosis.refresh_timeout", "how long a diagnosis with refresh waits for its data collection", duration(false, func(c *Config) *Duration { return &c.Diagnosis.RefreshTimeout })},
		{"PRESENCE_ONLINE_WITHIN", "presence.online_within", "how recently Nexthink must have heard from a device for it to count as online", duration(false, func(c *Config) *Duration { return &c.Presence.OnlineWithin })},
		{"MAX_CACHE_REQUESTS_PER_SECOND", "limits.cache_requests_per_second", "cache reads per second, whole deployment (legacy name)", number(func(c *Config) *float64 { return &c.Limits.CacheRequestsPerSecond })},
		{"MAX_ENGINE_REQUESTS_PER_SECOND", "limits.engine_requests_per_second", "NQL calls per second per instance (legacy name)", number(func(c *Config) *float64 { return &c.Limits.EngineRequestsPerSecond })},
		{"MAX_PORTAL_REQUESTS_PER_SECOND", "limits.portal_requests_per_second", "Remote Actions API calls per second per instance (legacy name)", number(func(c *Config) *float64 { return &c.Limits.PortalRequestsPerSecond })},
		{"REMOTE_ACTION_POLL_INTERVAL", "executions.poll_interval", "how often the poller asks each instance about its open remote-action executions", duration(false, func(c *Config) *Duration { return &c.Executions.PollInterval })},
		{"WEBHOOKS_FILE", "webhooks.file", "webhook sources and mapping rules", str(func(c *Config) *string { return &c.Webhooks.File })},
		{"PROACTIVE_CALLBACK_URL", "proactive.callback_url", "the chatbot's URL for proactive event callbacks", str(func(c *Config) *string { return &c.Proactive.CallbackURL })},
		{"PROACTIVE_CALLBACK_SECRET", "proactive.callback_secret_file", "secret that signs the callbacks (or a file named by proactive.callback_secret_file)", func(c *Config, s string) error { c.Proactive.CallbackSecret = Secret(s); return nil }},
		{"CORS_ALLOWED_ORIGINS", "cors.allowed_origins", "browser origins allowed to call the API, comma-separated, or *; unset: none", func(c *Config, s string) error {
			c.CORS.AllowedOrigins = nil
			for _, o := range strings.Split(s, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.CORS.AllowedOrigins = append(c.CORS.AllowedOrigins, o)
				}
			}
			return nil
		}},
		{"PROACTIVE_CALLBACK_MAX_ATTEMPTS", "proactive.max_attempts", "attempts at a delivery before it is dead and its subscription paused", integer(func(c *Config) *int { return &c.Proactive.MaxAttempts })},
	}
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, s string) error { *field(c) = s; return nil }
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		*field(c) = v
		return nil
	}
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, s string) error {
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		*field(c) = v
		return nil
	}
}

func number(field func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		*field(c) = v
		return nil
	}
}

func duration(bareDays bool, field func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, s string) error {
		v, err := ParseDuration(s, bareDays)
		if err != nil {
			return err
		}
		*field(c) = Duration(v)
		return nil
	}
}
