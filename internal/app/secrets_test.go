package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestNoSecretInTheLogs runs every service at debug level with every kind of secret
// configured (the tenant's client secret, the database password, the admin password,
// a webhook source's password, the callback signing secret), drives a session with
// failures in it (wrong credentials, a wrong key, an expired tenant token, webhooks),
// and finds none of the secrets, nor the API key, in any log line.
func TestNoSecretInTheLogs(t *testing.T) {
	const (
		dbPassword       = "db-pass-s3cret-4711"
		adminPassword    = "admin-pass-s3cret-0815"
		webhookPassword  = "webhook-pass-s3cret-1234"
		callbackSecret   = "callback-sign-s3cret-5678"
		attemptedSecret  = "wrong-guess-s3cret-9999"
		tenantSecretName = "eu-client-secret" // nxsim's credential, configured below
	)
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 50 * time.Millisecond, Running: 100 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	callbacks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(callbacks.Close)
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", webhookPassword)

	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu").Instances
	u, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), dbPassword) // trust auth ignores it; the logs must too
	cfg.DatabaseURL = config.Secret(u.String())
	cfg.Admin = config.Admin{Username: "operator", Password: config.Secret(adminPassword)}
	cfg.Webhooks.File = filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml")
	cfg.Proactive.CallbackURL = callbacks.URL
	cfg.Proactive.CallbackSecret = config.Secret(callbackSecret)
	cfg.Executions.PollInterval = config.Duration(100 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log, _ := logging.New(logs, "debug")
	base, stop := startLogged(t, cfg, log)

	basic := func(method, path, user, pass, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := basic(http.MethodPost, "/api/v1/api-keys", "operator", attemptedSecret, `{"name":"x"}`); code != 401 {
		t.Errorf("wrong admin password: %d", code)
	}
	key := apiKey(t, cfg)
	ctx := context.Background()
	c := apiclient.New(base, key)
	waitUntil(t, func() bool {
		d, err := c.Identify(ctx, events.KeyDeviceName, "PC-HEALTHY")
		return err == nil && d.Source == events.SourceCache
	})
	if _, err := apiclient.New(base, "dxb_"+strings.Repeat("x", 43)).Topics(ctx); err == nil {
		t.Error("a wrong key was accepted")
	}
	discoverytest.Control(t, sim, "eu", http.MethodPost, "/_nxsim/tokens/expire", nil, nil)
	if _, err := c.Diagnose(ctx, "outlook", "PC-OUTLOOK-OFFLINE", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Remediate(ctx, "outlook", "set_outlook_online", "PC-OUTLOOK-OFFLINE", 30, "secret test"); err != nil {
		t.Fatal(err)
	}
	alert := `{"monitor":"Outlook crashes","status":"open","device":"PC-OUTLOOK-PLUGIN","user":"hjordan"}`
	if code := basic(http.MethodPost, "/api/v1/webhooks/nexthink", "nexthink", attemptedSecret, alert); code != 401 {
		t.Errorf("wrong webhook password: %d", code)
	}
	if code := basic(http.MethodPost, "/api/v1/webhooks/nexthink", "nexthink", webhookPassword, alert); code != 202 {
		t.Errorf("webhook: %d", code)
	}
	waitUntil(t, func() bool {
		return strings.Contains(logs.String(), "callback delivered") || strings.Contains(logs.String(), `"channel":"callback"`)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	if !strings.Contains(out, `"level":"DEBUG"`) {
		t.Fatal("no debug lines: the test did not log what it meant to")
	}
	for name, secret := range map[string]string{
		"the database password": dbPassword, "the admin password": adminPassword, "the webhook password": webhookPassword,
		"the callback secret": callbackSecret, "an attempted password": attemptedSecret, "the tenant's client secret": tenantSecretName,
		"the API key": key,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain %s", name)
		}
	}
}
