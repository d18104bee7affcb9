package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// Webhooks configures the webhook receiver and worker. The sources and their
// mapping rules are in File (config/webhooks.yaml).
type Webhooks struct {
	File string `yaml:"file"` // WEBHOOKS_FILE
	// DuplicateWindow is JetStream's own dedupe window; PostgreSQL keeps longer.
	DuplicateWindow Duration `yaml:"duplicate_window"`
	// PublishTimeout bounds the wait for JetStream before answering 503.
	PublishTimeout Duration `yaml:"publish_timeout"`
	// MaxDeliveries: a webhook that fails this many times is recorded as failed.
	MaxDeliveries int `yaml:"max_deliveries"`
	Concurrency   int `yaml:"concurrency"` // webhooks one worker holds at once, processed in batches
}

// Proactive configures how proactive events reach the chatbot.
type Proactive struct {
	CallbackURL        string   `yaml:"callback_url"` // PROACTIVE_CALLBACK_URL; empty: no callbacks
	CallbackSecretFile string   `yaml:"callback_secret_file"`
	CallbackSecret     Secret   `yaml:"-"`            // PROACTIVE_CALLBACK_SECRET
	MaxAttempts        int      `yaml:"max_attempts"` // PROACTIVE_CALLBACK_MAX_ATTEMPTS
	BackoffInitial     Duration `yaml:"backoff_initial"`
	BackoffMax         Duration `yaml:"backoff_max"`
	Timeout            Duration `yaml:"timeout"`          // one callback attempt
	StreamHeartbeat    Duration `yaml:"stream_heartbeat"` // idle server-sent event streams
	// Subscriptions limits what the chatbots may subscribe at run time.
	Subscriptions Subscriptions `yaml:"subscriptions"`
}

// Subscriptions limits the URLs of runtime subscriptions, so an API key holder
// cannot make dexbridge call inside its network. The configured callback is the
// operator's own and is not limited.
type Subscriptions struct {
	// AllowHTTP lets a subscription URL be plain http; by default only https.
	AllowHTTP bool `yaml:"allow_http"`
	// AllowedNetworks are the CIDR prefixes of loopback, link-local, private or
	// otherwise internal addresses a subscription may still reach
	// ("10.20.0.0/16"); by default none.
	AllowedNetworks []string `yaml:"allowed_networks"`
	// Max is how many subscriptions the API may hold.
	Max int `yaml:"max"`
}

func defaultWebhooks() Webhooks {
	return Webhooks{File: "config/webhooks.yaml", DuplicateWindow: Duration(2 * time.Minute),
		PublishTimeout: Duration(5 * time.Second), MaxDeliveries: 5, Concurrency: 192}
}

func defaultProactive() Proactive {
	return Proactive{MaxAttempts: 8, BackoffInitial: Duration(time.Second), BackoffMax: Duration(10 * time.Minute),
		Timeout: Duration(10 * time.Second), StreamHeartbeat: Duration(15 * time.Second),
		Subscriptions: Subscriptions{Max: 100}}
}

// loadProactiveSecret reads the callback secret from its file when the variable is unset.
func (c *Config) loadProactiveSecret() error {
	if c.Proactive.CallbackSecret != "" || c.Proactive.CallbackSecretFile == "" {
		return nil
	}
	raw, err := os.ReadFile(c.Proactive.CallbackSecretFile)
	if err != nil {
		return &Error{Key: "proactive.callback_secret_file", Reason: err.Error()}
	}
	c.Proactive.CallbackSecret = Secret(strings.TrimSpace(string(raw)))
	return nil
}

func (c Config) validateWebhooks() error {
	positive := []struct {
		key, env string
		v        float64
	}{
		{"webhooks.duplicate_window", "", c.Webhooks.DuplicateWindow.Seconds()},
		{"webhooks.publish_timeout", "", c.Webhooks.PublishTimeout.Seconds()},
		{"webhooks.max_deliveries", "", float64(c.Webhooks.MaxDeliveries)},
		{"webhooks.concurrency", "", float64(c.Webhooks.Concurrency)},
		{"proactive.max_attempts", "PROACTIVE_CALLBACK_MAX_ATTEMPTS", float64(c.Proactive.MaxAttempts)},
		{"proactive.backoff_initial", "", c.Proactive.BackoffInitial.Seconds()},
		{"proactive.backoff_max", "", c.Proactive.BackoffMax.Seconds()},
		{"proactive.timeout", "", c.Proactive.Timeout.Seconds()},
		{"proactive.stream_heartbeat", "", c.Proactive.StreamHeartbeat.Seconds()},
		{"proactive.subscriptions.max", "", float64(c.Proactive.Subscriptions.Max)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return &Error{Key: p.key, Env: p.env, Reason: "must be greater than zero"}
		}
	}
	for _, n := range c.Proactive.Subscriptions.AllowedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return &Error{Key: "proactive.subscriptions.allowed_networks", Reason: fmt.Sprintf("%q is not a CIDR prefix such as 10.20.0.0/16", n)}
		}
	}
	if c.Webhooks.File == "" {
		return &Error{Key: "webhooks.file", Env: "WEBHOOKS_FILE", Reason: "required: the webhook sources and mapping rules"}
	}
	if u := c.Proactive.CallbackURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return &Error{Key: "proactive.callback_url", Env: "PROACTIVE_CALLBACK_URL", Reason: "want an http(s) URL"}
		}
		if len(c.Proactive.CallbackSecret) < 16 {
			return &Error{Key: "proactive.callback_secret_file", Env: "PROACTIVE_CALLBACK_SECRET",
				Reason: fmt.Sprintf("callbacks are signed: set a secret of at least 16 characters (got %d)", len(c.Proactive.CallbackSecret))}
		}
	}
	return nil
}
