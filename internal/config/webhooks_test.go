package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWebhookAndProactiveSettings(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-a-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantKey string // "" for success
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Webhooks.File != "config/webhooks.yaml" || c.Webhooks.DuplicateWindow.D() != 2*time.Minute || c.Webhooks.MaxDeliveries != 5 ||
				c.Proactive.CallbackURL != "" || c.Proactive.MaxAttempts != 8 || c.Proactive.StreamHeartbeat.D() != 15*time.Second {
				t.Errorf("got %+v %+v", c.Webhooks, c.Proactive)
			}
		}},
		{name: "callback from the environment",
			env: map[string]string{"PROACTIVE_CALLBACK_URL": "https://bot.example.com/hook", "PROACTIVE_CALLBACK_SECRET": "0123456789abcdef", "PROACTIVE_CALLBACK_MAX_ATTEMPTS": "3", "WEBHOOKS_FILE": "/etc/dexbridge/webhooks.yaml"},
			check: func(t *testing.T, c Config) {
				if c.Proactive.CallbackSecret.Reveal() != "0123456789abcdef" || c.Proactive.MaxAttempts != 3 || c.Webhooks.File != "/etc/dexbridge/webhooks.yaml" {
					t.Errorf("got %+v %+v", c.Proactive, c.Webhooks)
				}
			}},
		{name: "secret from a file", file: "proactive:\n  callback_url: https://bot.example.com/hook\n  callback_secret_file: " + secretFile + "\n",
			check: func(t *testing.T, c Config) {
				if c.Proactive.CallbackSecret.Reveal() != "from-a-file-0123456789" {
					t.Errorf("got %q", c.Proactive.CallbackSecret.Reveal())
				}
			}},
		{name: "callback without a secret", env: map[string]string{"PROACTIVE_CALLBACK_URL": "https://bot.example.com/hook"}, wantKey: "proactive.callback_secret_file"},
		{name: "short secret", env: map[string]string{"PROACTIVE_CALLBACK_URL": "https://bot.example.com/hook", "PROACTIVE_CALLBACK_SECRET": "short"}, wantKey: "proactive.callback_secret_file"},
		{name: "not a URL", env: map[string]string{"PROACTIVE_CALLBACK_URL": "ftp://x", "PROACTIVE_CALLBACK_SECRET": "0123456789abcdef"}, wantKey: "proactive.callback_url"},
		{name: "unknown key", file: "webhooks:\n  colour: red\n", wantKey: "webhooks"},
		{name: "wrong type", file: "proactive:\n  max_attempts: many\n", wantKey: "proactive.max_attempts"},
		{name: "subscription limits", file: "proactive:\n  subscriptions:\n    allow_http: true\n    allowed_networks: [10.20.0.0/16, \"fd00::/8\"]\n    max: 5\n",
			check: func(t *testing.T, c Config) {
				if s := c.Proactive.Subscriptions; !s.AllowHTTP || len(s.AllowedNetworks) != 2 || s.Max != 5 {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "subscription defaults", check: func(t *testing.T, c Config) {
			if s := c.Proactive.Subscriptions; s.AllowHTTP || len(s.AllowedNetworks) != 0 || s.Max != 100 {
				t.Errorf("got %+v", s)
			}
		}},
		{name: "not a network", file: "proactive:\n  subscriptions:\n    allowed_networks: [intranet]\n", wantKey: "proactive.subscriptions.allowed_networks"},
		{name: "zero attempts", env: map[string]string{"PROACTIVE_CALLBACK_MAX_ATTEMPTS": "0"}, wantKey: "proactive.max_attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.file, tt.env)
			if tt.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, c)
				return
			}
			var ce *Error
			if !errors.As(err, &ce) && !strings.Contains(fmtErr(err), tt.wantKey) {
				t.Fatalf("got %v, want an error naming %s", err, tt.wantKey)
			}
			if !strings.Contains(fmtErr(err), tt.wantKey) {
				t.Errorf("got %v, want it to name %s", err, tt.wantKey)
			}
			if s := tt.env["PROACTIVE_CALLBACK_SECRET"]; s != "" && strings.Contains(fmtErr(err), s) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
