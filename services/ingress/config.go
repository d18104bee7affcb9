package ingress

import (
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
)

// Config is the tuning of what the ingress serves beside the API: the webhook
// receiver and the proactive feed. A Config is whole: start from DefaultConfig.
type Config struct {
	Webhooks WebhookConfig
	Feed     FeedConfig
}

// WebhookConfig tunes the webhook receiver.
type WebhookConfig struct {
	// PublishTimeout bounds the wait for JetStream's acknowledgement; past it the
	// sender gets 503 and retries.
	PublishTimeout time.Duration
	// DuplicateWindow is the WEBHOOKS stream's own dedupe window.
	DuplicateWindow time.Duration
}

// FeedConfig tunes the proactive feed.
type FeedConfig struct {
	// Heartbeat is how often an idle stream sends a comment line.
	Heartbeat time.Duration
	// Poll is how often a stream looks at the feed when nothing woke it.
	Poll time.Duration
}

// ConfigFrom is the ingress's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{
		Webhooks: WebhookConfig{PublishTimeout: c.Webhooks.PublishTimeout.D(), DuplicateWindow: c.Webhooks.DuplicateWindow.D()},
		Feed:     FeedConfig{Heartbeat: c.Proactive.StreamHeartbeat.D(), Poll: 2 * time.Second},
	}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }
