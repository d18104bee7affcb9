package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/callbacktest"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestSubscriptionsOnTheFleet: three chatbots subscribe through the API, one to
// everything in German, one to the us tenant in French, one to low disk space only
// whose endpoint fails; alerts fired by nxsim at randomly drawn devices of both
// tenants reach each subscription its filters take, once, signed (checked by the
// Standard Webhooks library), though two dispatcher processes share the work. The
// failing one is paused and visible, and once resumed gets what it missed.
func TestSubscriptionsOnTheFleet(t *testing.T) {
	const password = "fleet-webhook-password"
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", password)
	t.Setenv("WEBHOOK_NEXTHINK_US_PASSWORD", password)
	sim := discoverytest.StartSim(t, nil)
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Webhooks.File = webhooksForBothTenants(t)
	// The receivers listen on loopback over plain http: the operator allows it.
	cfg.Proactive.Subscriptions.AllowHTTP = true
	cfg.Proactive.Subscriptions.AllowedNetworks = []string{"127.0.0.0/8"}
	cfg.Proactive.MaxAttempts = 2
	cfg.Proactive.BackoffInitial, cfg.Proactive.BackoffMax = config.Duration(20*time.Millisecond), config.Duration(100*time.Millisecond)
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "webhooks", "proactive")
	// A second process running only a dispatcher, on the same outbox. (start waits
	// for an ingress address, which it has not.)
	second, stopSecond := context.WithCancel(context.Background())
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- app.Run(second, app.Options{Config: cfg, Services: []string{"proactive"}, Log: logging.Discard(), Version: "0.0.0-test"})
	}()
	t.Cleanup(func() {
		stopSecond()
		if err := <-secondDone; err != nil {
			t.Errorf("second dispatcher: %v", err)
		}
	})
	key := apiKey(t, cfg)
	waitDiscovered(t, base, key, 2)

	call := func(method, path, body string, into any) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if into != nil {
			_ = json.Unmarshal(raw, into)
		}
		return resp.StatusCode, string(raw)
	}
	// The receivers learn their secret from the creation's answer, the only place it is.
	type chatbot struct {
		*callbacktest.Receiver
		id string
	}
	subscribe := func(filters string) *chatbot {
		t.Helper()
		var fwd http.Handler
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fwd.ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		var created api.CreatedSubscription
		if code, raw := call(http.MethodPost, "/api/v1/proactive/subscriptions", `{"url":"`+srv.URL+`/events",`+filters+`}`, &created); code != 201 {
			t.Fatalf("subscribe %s: %d %s", filters, code, raw)
		}
		bot := &chatbot{Receiver: callbacktest.New(t, created.Secret), id: created.ID}
		fwd = bot.Receiver
		return bot
	}
	everything := subscribe(`"locale":"de-ch"`)
	usOnly := subscribe(`"instances":["us"],"locale":"fr"`)
	disk := subscribe(`"monitors":["LOW DISK SPACE"]`)
	disk.SetStatus(http.StatusInternalServerError)
	if code, raw := call(http.MethodPost, "/api/v1/proactive/subscriptions", `{"url":"http://169.254.169.254/latest/meta-data/"}`, nil); code != 422 ||
		!strings.Contains(raw, `"field":"url"`) {
		t.Errorf("a link-local URL: got %d %s, want 422 on url", code, raw)
	}
	if code, raw := call(http.MethodGet, "/api/v1/proactive/subscriptions", "", nil); code != 200 || strings.Contains(raw, "whsec_") {
		t.Errorf("list: got %d %s, want no secret", code, raw)
	}

	// Devices drawn at random: macOS devices with a user, online, in each tenant.
	seed := uint64(time.Now().UnixNano()%1000 + 1)
	ctx := context.Background()
	eu, us := nxsim.NewControlClient(sim.TenantURL("eu"), nil), nxsim.NewControlClient(sim.TenantURL("us"), nil)
	pick := func(cc *nxsim.ControlClient, n int) []nxsim.SampledDevice {
		t.Helper()
		devs, err := cc.SampleDevices(ctx, nxsim.Sample{N: 40, Seed: seed, Platform: "macOS", Presence: "online"})
		if err != nil {
			t.Fatal(err)
		}
		var out []nxsim.SampledDevice
		for _, d := range devs {
			if d.User != "" && len(out) < n {
				out = append(out, d)
			}
		}
		if len(out) < n {
			t.Fatalf("seed %d: %d online macOS devices with a user, want %d", seed, len(out), n)
		}
		return out
	}
	euDevs, usDevs := pick(eu, 2), pick(us, 1)
	t.Logf("seed %d: eu %s %s, us %s", seed, euDevs[0].Name, euDevs[1].Name, usDevs[0].Name)
	fire := func(cc *nxsim.ControlClient, monitor, status, device string) {
		t.Helper()
		path := "/api/v1/webhooks/nexthink"
		if cc == us {
			path += "-us"
		}
		webhook := &nxsim.Webhook{URL: base, Path: path, Payload: nexthinkPayload,
			Auth: &nxsim.WebhookAuth{Type: "basic", Username: "nexthink", Password: password}}
		raw, err := cc.FireAlert(ctx, nxsim.FireAlert{Monitor: monitor, Status: status, Device: device, Webhook: webhook})
		var out struct {
			Webhook nxsim.WebhookResult `json:"webhook"`
		}
		if err != nil || json.Unmarshal(raw, &out) != nil || out.Webhook.Status != 202 {
			t.Fatalf("%s on %s: %v %s", monitor, device, err, raw)
		}
	}
	fire(eu, "Outlook crashes", "open", euDevs[0].Name)
	fire(eu, "Low disk space", "open", euDevs[1].Name)
	fire(us, "Outlook crashes", "open", usDevs[0].Name)

	got := func(bot *chatbot, kind string) map[string]callbacktest.Delivery {
		out := map[string]callbacktest.Delivery{}
		for _, d := range bot.Received() {
			if d.Body.Kind == kind && d.Body.Event.Device != nil {
				out[d.Body.Event.Device.Name] = d
			}
		}
		return out
	}
	waitUntil(t, func() bool { return len(got(everything, "opened")) == 3 && len(got(usOnly, "opened")) == 1 })
	// The failing subscription is paused after its attempts, and says why.
	var paused api.Subscription
	waitUntil(t, func() bool {
		call(http.MethodGet, "/api/v1/proactive/subscriptions/"+disk.id, "", &paused)
		return paused.State == "paused"
	})
	if paused.Failures < 2 || paused.LastError == nil || *paused.LastError != "HTTP 500" || paused.PausedAt == nil || paused.Pending != 1 {
		t.Errorf("paused subscription: got %+v, want 2 failures of HTTP 500 and the delivery waiting", paused)
	}
	if _, ok := got(usOnly, "opened")[usDevs[0].Name]; !ok {
		t.Errorf("the us subscription got %v, want the us device's event", got(usOnly, "opened"))
	}
	for name, d := range got(everything, "opened") {
		if d.Language != "de-CH" || d.Body.Event.Message == "" || d.Body.Event.Employee == nil {
			t.Errorf("%s: got Content-Language %q, event %+v", name, d.Language, d.Body.Event)
		}
	}
	for _, d := range usOnly.Received() {
		if d.Language != "fr" || d.Body.Event.Device.Instance != "us" {
			t.Errorf("us subscription: got %q for instance %s", d.Language, d.Body.Event.Device.Instance)
		}
	}

	// Resumed, it gets what it missed; a recovery reaches the subscriptions that take it.
	disk.SetStatus(http.StatusNoContent)
	if code, raw := call(http.MethodPost, "/api/v1/proactive/subscriptions/"+disk.id+"/resume", "", nil); code != 200 {
		t.Fatalf("resume: %d %s", code, raw)
	}
	fire(us, "Outlook crashes", "closed", usDevs[0].Name)
	waitUntil(t, func() bool {
		return len(got(disk, "opened")) == 1 && len(got(everything, "closed")) == 1 && len(got(usOnly, "closed")) == 1
	})
	if _, ok := got(disk, "opened")[euDevs[1].Name]; !ok {
		t.Errorf("resumed subscription got %v, want the low disk space event", got(disk, "opened"))
	}
	// Everything delivered: each subscription got each of its deliveries once.
	waitUntil(t, func() bool {
		var list api.Subscriptions
		call(http.MethodGet, "/api/v1/proactive/subscriptions", "", &list)
		for _, s := range list.Subscriptions {
			if s.Pending != 0 || s.State != "active" {
				return false
			}
		}
		return len(list.Subscriptions) == 3
	})
	for name, bot := range map[string]*chatbot{"everything": everything, "us": usOnly, "disk": disk} {
		seen := map[string]int{}
		for _, d := range bot.Received() {
			if seen[d.ID]++; seen[d.ID] > 1 {
				t.Errorf("%s: delivery %s received twice", name, d.ID)
			}
		}
		if bad := bot.Bad(); len(bad) > 0 {
			t.Errorf("%s: signatures that do not verify: %v", name, bad)
		}
	}
	if n := len(everything.Received()); n != 4 {
		t.Errorf("everything: got %d deliveries, want 3 opened and 1 closed", n)
	}
}
