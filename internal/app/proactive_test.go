package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/callbacktest"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// nexthinkPayload is the payload template docs/webhooks.md gives Nexthink administrators.
const nexthinkPayload = `{"monitor": "{{alert.monitor.name}}", "status": "{{alert.status}}",
 "device": "{{device.name}}", "user": "{{user.name}}",
 "trigger_time": "{{alert.trigger_time}}", "recovery_time": "{{alert.recovery_time}}",
 "context": "{{alert.context}}", "priority": "{{alert.monitor.priority}}"}`

// agree checks that an event's message, assessment and remediations say the same
// thing: a fix is offered (the shipped messages ask "shall I") exactly when the
// assessment is fix_available and a remote action is among the remediations, each of
// them ready.
func agree(t *testing.T, ev events.ProactiveEvent) {
	t.Helper()
	remote := false
	for _, r := range ev.Remediations {
		remote = remote || r.RemoteAction != ""
		if !r.Ready {
			t.Errorf("%s: remediation %s offered though not ready", ev.Device.Name, r.ID)
		}
	}
	offers := strings.Contains(strings.ToLower(ev.Message), "shall i")
	if fix := ev.Assessment == events.AssessFixAvailable; offers != fix || remote != fix {
		t.Errorf("%s (%s): message %q offers a fix: %v, remote actions offered: %v; assessment %s", ev.Device.Name, ev.Monitor,
			ev.Message, offers, remote, ev.Assessment)
	}
}

// TestProactiveConversationsOnTheFleet fires Nexthink alerts from nxsim at ordinary
// fleet devices of both tenants (drawn with a seed) and checks what a chatbot gets,
// by callback, pull and stream: a fix is offered only where one can run; a macOS
// device under a Windows-only topic is said not to be checked; a healthy device's
// alert and an uncached device's are recorded for operators and not sent; a recovery
// closes the event; the webhooks listing says what became of each webhook.
func TestProactiveConversationsOnTheFleet(t *testing.T) {
	const password, secret = "fleet-webhook-password", "fleet-callback-secret"
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", password)
	t.Setenv("WEBHOOK_NEXTHINK_US_PASSWORD", password)
	bot := callbacktest.New(t, secret)
	receiver := httptest.NewServer(bot)
	t.Cleanup(receiver.Close)
	sim := discoverytest.StartSim(t, nil)
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Webhooks.File = webhooksForBothTenants(t)
	cfg.Proactive.CallbackURL = receiver.URL
	cfg.Proactive.CallbackSecret = config.Secret(secret)
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "webhooks", "proactive")
	key := apiKey(t, cfg)
	waitDiscovered(t, base, key, 2)
	ctx := context.Background()
	client := apiclient.New(base, key)
	eu, us := nxsim.NewControlClient(sim.TenantURL("eu"), nil), nxsim.NewControlClient(sim.TenantURL("us"), nil)
	sample := func(cc *nxsim.ControlClient, s nxsim.Sample) []nxsim.SampledDevice {
		t.Helper()
		s.Seed = 16
		devs, err := cc.SampleDevices(ctx, s)
		if err != nil || len(devs) == 0 {
			t.Fatalf("sample %+v: %v %v", s, devs, err)
		}
		return devs
	}
	status := func(d *events.Diagnosis, rule string) string {
		for _, r := range d.Rules {
			if r.Rule == rule {
				return r.Status
			}
		}
		return ""
	}

	// The devices: a macOS one; a Windows one whose disk is fine and one whose disk is
	// nearly full (the diagnosis says which); a long-unseen one discovery did not cache;
	// a device of the us tenant with an Outlook problem.
	mac := sample(eu, nxsim.Sample{N: 1, Platform: "macOS", Presence: "online"})[0]
	var healthy, full *nxsim.SampledDevice
	for _, d := range sample(eu, nxsim.Sample{N: 60, Platform: "Windows", Presence: "online"}) {
		diag, err := client.Diagnose(ctx, "slow_pc", d.Name, false)
		if err != nil {
			t.Fatalf("diagnose %s: %v", d.Name, err)
		}
		switch s := status(diag, "low_disk_space"); {
		case s == "clear" && healthy == nil:
			healthy = &d
		case s == "found" && full == nil:
			full = &d
		}
	}
	if healthy == nil || full == nil {
		t.Fatalf("among 60 online Windows devices: healthy disk %v, full disk %v; want one of each", healthy, full)
	}
	var unseen *nxsim.SampledDevice
	for _, d := range sample(eu, nxsim.Sample{N: 200, Presence: "long_unseen"}) {
		if time.Since(d.LastSeen) > cfg.Cache.UserActivityPeriod.D()+24*time.Hour {
			unseen = &d
			break
		}
	}
	if unseen == nil {
		t.Fatal("no device last seen before the user activity period")
	}
	var abroad *nxsim.SampledDevice
	for _, d := range sample(us, nxsim.Sample{N: 20, Platform: "Windows", Presence: "online"}) {
		diag, err := client.Diagnose(ctx, "outlook", d.Name, false)
		if err != nil {
			t.Fatalf("diagnose %s: %v", d.Name, err)
		}
		if len(diag.Findings) > 0 {
			abroad = &d
			break
		}
	}
	if abroad == nil {
		t.Fatal("no us device with an Outlook problem among 20")
	}
	t.Logf("mac %s, healthy %s, full disk %s, unseen %s (%s), us %s", mac.Name, healthy.Name, full.Name, unseen.Name,
		unseen.LastSeen.Format(time.DateOnly), abroad.Name)

	fire := func(cc *nxsim.ControlClient, monitor, status, device string) {
		t.Helper()
		// Each tenant posts to the source bound to its instance.
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
	fire(eu, "Low disk space", "open", mac.Name)
	fire(eu, "Outlook crashes", "open", mac.Name)
	fire(eu, "Low disk space", "open", healthy.Name)
	fire(eu, "Low disk space", "open", full.Name)
	fire(eu, "Outlook crashes", "open", unseen.Name)
	fire(us, "Outlook crashes", "open", abroad.Name)
	for _, body := range []string{`{}`, `{"foo":"bar"}`} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/webhooks/nexthink", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("nexthink", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 422 || p["field"] != "monitor" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: got %d %v, want 422 naming the monitor", body, resp.StatusCode, p)
		}
	}

	// What became of each webhook, for operators.
	var listing api.WebhookDeliveries
	waitUntil(t, func() bool {
		return getJSONWithKey(t, base+"/api/v1/webhooks/deliveries?limit=50", key, &listing) == 200 && len(listing.Deliveries) == 8
	})
	outcome := map[string]api.WebhookDelivery{} // by monitor and device
	invalid := 0
	for _, d := range listing.Deliveries {
		if d.Outcome == "invalid" {
			invalid++
			continue
		}
		if len(d.Events) != 1 {
			t.Fatalf("%s: got events %+v, want one", d.ID, d.Events)
		}
		outcome[d.Monitor+"@"+d.Events[0].Device] = d
	}
	for _, w := range []struct{ monitor, device, outcome, detail string }{
		{"Low disk space", mac.Name, "opened", ""},
		{"Outlook crashes", mac.Name, "opened", ""},
		{"Low disk space", healthy.Name, "healthy_not_sent", "found nothing wrong"},
		{"Low disk space", full.Name, "opened", "fix available: Disk cleanup"},
		{"Outlook crashes", unseen.Name, "unresolved", "device " + unseen.Name + " is not in the cache"},
		{"Outlook crashes", abroad.Name, "opened", ""},
	} {
		d, ok := outcome[w.monitor+"@"+w.device]
		if !ok || d.Outcome != w.outcome || !strings.Contains(d.Detail, w.detail) {
			t.Errorf("%s on %s: got %q (%s), want %s (%q)", w.monitor, w.device, d.Outcome, d.Detail, w.outcome, w.detail)
		}
	}
	if invalid != 2 {
		t.Errorf("invalid payloads in the listing: got %d, want 2", invalid)
	}
	// Held events never enter the callback outbox.
	pool, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, held := range []string{"Low disk space@" + healthy.Name, "Outlook crashes@" + unseen.Name} {
		if ds, err := store.New(pool).ProactiveDeliveries(ctx, outcome[held].Events[0].ID); err != nil || len(ds) != 0 {
			t.Errorf("%s: got callback deliveries %v (%v), want none", held, ds, err)
		}
	}

	// What the chatbot is told.
	var got = map[string]events.ProactiveEvent{}
	waitUntil(t, func() bool {
		for _, k := range []string{"Low disk space@" + mac.Name, "Outlook crashes@" + mac.Name, "Low disk space@" + full.Name, "Outlook crashes@" + abroad.Name} {
			monitor, device, _ := strings.Cut(k, "@")
			for _, d := range bot.Received() {
				if g := d.Body; g.Kind == "opened" && g.Event.Monitor == monitor && g.Event.Device.Name == device {
					got[k] = g.Event
				}
			}
		}
		return len(got) == 4
	})
	for k, ev := range got {
		agree(t, ev)
		if ev.Employee == nil || ev.Device.Platform == "" || ev.Device.Instance == "" {
			t.Errorf("%s: got employee %+v device %+v", k, ev.Employee, ev.Device)
		}
	}
	for _, monitor := range []string{"Low disk space", "Outlook crashes"} {
		ev := got[monitor+"@"+mac.Name]
		if ev.Assessment != events.AssessNotChecked || len(ev.Remediations) != 0 || ev.Diagnosis == nil ||
			!strings.Contains(ev.Diagnosis.Error, "applies to Windows devices") || !strings.Contains(ev.Message, "could not check") ||
			ev.Employee.Name != mac.User {
			t.Errorf("%s on macOS: got assessment %s remediations %v diagnosis %+v message %q", monitor, ev.Assessment, ev.Remediations, ev.Diagnosis, ev.Message)
		}
	}
	if ev := got["Low disk space@"+full.Name]; ev.Assessment != events.AssessFixAvailable || len(ev.Remediations) != 1 ||
		ev.Remediations[0].RemoteAction != "#disk_cleanup" || !strings.Contains(ev.Message, "Shall I run a disk cleanup") ||
		ev.Diagnosis == nil || ev.Diagnosis.Verdict != "problems_found" {
		t.Errorf("full disk: got assessment %s remediations %+v message %q", ev.Assessment, ev.Remediations, ev.Message)
	}
	if ev := got["Outlook crashes@"+abroad.Name]; ev.Device.Instance != "us" || ev.Employee.Name != abroad.User ||
		(ev.Assessment != events.AssessFixAvailable && ev.Assessment != events.AssessProblemConfirmed) {
		t.Errorf("us device: got instance %s employee %+v assessment %s", ev.Device.Instance, ev.Employee, ev.Assessment)
	}

	// The recovery closes the event.
	fire(eu, "Low disk space", "closed", full.Name)
	var closed *events.ProactiveEventChanged
	waitUntil(t, func() bool {
		if d := bot.Find("closed", full.Name); d != nil {
			closed = &d.Body
		}
		return closed != nil
	})
	if c := closed.Event; c.ID != got["Low disk space@"+full.Name].ID || c.Status != "closed" || c.Alert.Status != "closed" ||
		c.Alert.RecoveryTime == nil || c.ClosedAt == nil || c.Message != "The system drive of "+full.Name+" has enough free space again." ||
		c.CloseMessage != c.Message {
		t.Errorf("recovery: got %+v", c)
	}

	// Pull and stream agree with the callbacks; a replayed stream has the same ids.
	var feed api.ProactiveEvents
	if code := getJSONWithKey(t, base+"/api/v1/proactive/events", key, &feed); code != 200 || len(feed.Events) != 4 {
		t.Fatalf("feed: got %d with %d events, want the 4 sent", code, len(feed.Events))
	}
	for _, ev := range feed.Events {
		if want := got[ev.Monitor+"@"+ev.Device.Name]; want.ID != ev.ID {
			t.Errorf("feed: got %s %s on %s, which the callbacks did not", ev.ID, ev.Monitor, ev.Device.Name)
		}
	}
	// (A closed event moves to a later cursor: the feed holds 4 changes.)
	first, second := stream(t, base, key, 4), stream(t, base, key, 4)
	if !slices.Equal(first, second) {
		t.Errorf("replayed stream: got ids %v, then %v", first, second)
	}
	if want := closed.Event.ID + ":closed"; first[3] != want || feed.Events[3].ID != closed.Event.ID {
		t.Errorf("stream: got %v, want it to end with %s", first, want)
	}

	// An admin key manages keys too, under the key endpoints' limit.
	var keys api.APIKeys
	if code := getJSONWithKey(t, base+"/api/v1/api-keys", key, &keys); code != 200 || len(keys.APIKeys) == 0 {
		t.Errorf("list keys with an admin key: got %d %+v", code, keys)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/api-keys", strings.NewReader(`{"name":"second"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 429 {
		t.Errorf("a second key call within 10 s: got %v %v, want 429", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if bad := bot.Bad(); len(bad) > 0 {
		t.Errorf("callbacks refused: %v", bad)
	}
}

// stream reads n changes from the start of the proactive stream and returns the ids
// of their documents.
func stream(t *testing.T, base, key string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/proactive/stream?after=0", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for len(ids) < n && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var doc events.ProactiveEventChanged
			if err := json.Unmarshal([]byte(data), &doc); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, doc.ID)
		}
	}
	if len(ids) < n {
		t.Fatalf("stream: got %v, want %d changes", ids, n)
	}
	return ids
}
