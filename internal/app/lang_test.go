package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// feedIn reads the proactive feed with an Accept-Language header; it returns the
// events and the answer's Content-Language.
func feedIn(t *testing.T, base, key, acceptLanguage string) ([]events.ProactiveEvent, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/proactive/events", nil)
	req.Header.Set("X-API-Key", key)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var feed api.ProactiveEvents
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&feed) != nil {
		t.Fatalf("feed (%s): got %d", acceptLanguage, resp.StatusCode)
	}
	return feed.Events, resp.Header.Get("Content-Language")
}

// TestProactiveFeedInTheReadersLanguage: alerts about fleet devices drawn at random
// (of eu, one whose system drive is nearly full; of us, one with an Outlook problem)
// become events whose message, findings and remediations each reader of the feed
// gets in the language its Accept-Language asks for (English for one dexbridge does
// not speak); the recovery message too.
func TestProactiveFeedInTheReadersLanguage(t *testing.T) {
	const password = "lang-webhook-password"
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", password)
	t.Setenv("WEBHOOK_NEXTHINK_US_PASSWORD", password)
	sim := discoverytest.StartSim(t, nil)
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Webhooks.File = webhooksForBothTenants(t)
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "webhooks")
	key := apiKey(t, cfg)
	waitDiscovered(t, base, key, 2)
	ctx := context.Background()
	client := apiclient.New(base, key)
	// eu: a device whose system drive is nearly full; us: one with an Outlook problem.
	full := map[string]nxsim.SampledDevice{} // by tenant
	monitor := map[string]string{"eu": "Low disk space", "us": "Outlook crashes"}
	for tenant, tt := range map[string]struct{ topic, rule string }{"eu": {"slow_pc", "low_disk_space"}, "us": {"outlook", ""}} {
		devs, err := nxsim.NewControlClient(sim.TenantURL(tenant), nil).SampleDevices(ctx,
			nxsim.Sample{N: 60, Seed: 61, Platform: "Windows", Presence: "online"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			diag, err := client.Diagnose(ctx, tt.topic, d.Name, false)
			if err != nil {
				t.Fatalf("diagnose %s: %v", d.Name, err)
			}
			for _, f := range diag.Findings {
				if tt.rule == "" || f.Rule == tt.rule {
					full[tenant] = d
				}
			}
			if _, ok := full[tenant]; ok {
				break
			}
		}
		if _, ok := full[tenant]; !ok {
			t.Fatalf("%s: no device with a %s finding among %d", tenant, tt.topic, len(devs))
		}
	}
	cat, err := topic.LoadDir(filepath.Join(testenv.RepoRoot(t), "topics"))
	if err != nil {
		t.Fatal(err)
	}
	fire := func(tenant, status string) {
		t.Helper()
		path := "/api/v1/webhooks/nexthink"
		if tenant == "us" {
			path += "-us"
		}
		webhook := &nxsim.Webhook{URL: base, Path: path, Payload: nexthinkPayload,
			Auth: &nxsim.WebhookAuth{Type: "basic", Username: "nexthink", Password: password}}
		raw, err := nxsim.NewControlClient(sim.TenantURL(tenant), nil).FireAlert(ctx,
			nxsim.FireAlert{Monitor: monitor[tenant], Status: status, Device: full[tenant].Name, Webhook: webhook})
		var out struct {
			Webhook nxsim.WebhookResult `json:"webhook"`
		}
		if err != nil || json.Unmarshal(raw, &out) != nil || out.Webhook.Status != 202 {
			t.Fatalf("%s on %s: %v %s", monitor[tenant], full[tenant].Name, err, raw)
		}
	}
	fire("eu", "open")
	fire("us", "open")
	waitUntil(t, func() bool { evs, _ := feedIn(t, base, key, ""); return len(evs) == 2 })

	greeting := map[string]string{"en": "Hi ", "de": "Hallo ", "fr": "Bonjour "}
	disk := map[string]struct{ message, fix string }{
		"de": {"das Systemlaufwerk von %s ist fast voll", "Datenträgerbereinigung"},
		"fr": {"le disque système de %s est presque plein", "Nettoyage de disque"},
		"en": {"the system drive of %s is almost full", "Disk cleanup"},
	}
	for _, tc := range []struct{ header, loc string }{
		{"de-CH", "de"}, {"fr-FR;q=0.8", "fr"}, {"es-ES, it;q=0.9", "en"}, {"", "en"},
	} {
		evs, lang := feedIn(t, base, key, tc.header)
		if lang != tc.loc {
			t.Errorf("feed (%q): Content-Language %q, want %q", tc.header, lang, tc.loc)
		}
		for _, ev := range evs {
			name := ev.Device.Name + " (" + tc.header + ")"
			if ev.Locale != tc.loc || ev.Texts != nil {
				t.Errorf("%s: got locale %q and texts %v, want %s only", name, ev.Locale, ev.Texts, tc.loc)
			}
			if !strings.HasPrefix(ev.Message, greeting[tc.loc]+ev.Employee.Name+",") || !strings.Contains(ev.Message, ev.Device.Name) {
				t.Errorf("%s: message %q, want it to greet %s in %s", name, ev.Message, ev.Employee.Name, tc.loc)
			}
			if ev.Diagnosis == nil || len(ev.Diagnosis.Findings) == 0 {
				t.Fatalf("%s: got diagnosis %+v, want findings", name, ev.Diagnosis)
			}
			top, _ := cat.Get(ev.Topic)
			english := map[string]string{}
			for _, r := range top.Rules {
				english[r.ID] = r.Title
			}
			for _, f := range ev.Diagnosis.Findings {
				if want := top.RuleTitleIn(tc.loc, f.Rule, english[f.Rule]); f.Title != want || (tc.loc != "en" && want == english[f.Rule]) {
					t.Errorf("%s: finding %s %q, want %q", name, f.Rule, f.Title, want)
				}
			}
			for _, r := range append(ev.Remediations, ev.Diagnosis.Remediations...) {
				def, _ := top.Remediation(r.ID)
				if want, _ := top.RemediationIn(tc.loc, r.ID, def.Title, def.Message); r.Title != want {
					t.Errorf("%s: remediation %s %q, want %q", name, r.ID, r.Title, want)
				}
			}
			if tc.loc == "en" {
				agree(t, ev) // it reads the English offer
			}
			if ev.Device.Instance != "eu" {
				continue
			}
			w := disk[tc.loc]
			if !strings.Contains(ev.Message, strings.Replace(w.message, "%s", ev.Device.Name, 1)) ||
				ev.Assessment != events.AssessFixAvailable || len(ev.Remediations) != 1 || ev.Remediations[0].Title != w.fix {
				t.Errorf("%s: got message %q assessment %s remediations %+v, want %q offering %q", name, ev.Message, ev.Assessment, ev.Remediations, w.message, w.fix)
			}
		}
	}

	// The recovery message, in each reader's language.
	fire("eu", "closed")
	var closed []events.ProactiveEvent
	waitUntil(t, func() bool {
		evs, _ := feedIn(t, base, key, "de")
		closed = nil
		for _, ev := range evs {
			if ev.Status == "closed" {
				closed = append(closed, ev)
			}
		}
		return len(closed) == 1
	})
	if got, want := closed[0].Message, "Auf dem Systemlaufwerk von "+full["eu"].Name+" ist wieder genug Platz frei."; got != want || closed[0].CloseMessage != want {
		t.Errorf("recovery in German: got %q / %q, want %q", got, closed[0].CloseMessage, want)
	}
	evs, _ := feedIn(t, base, key, "fr")
	for _, ev := range evs {
		if want := "Le disque système de " + full["eu"].Name + " dispose de nouveau de suffisamment d'espace libre."; ev.Status == "closed" && ev.Message != want {
			t.Errorf("recovery in French: got %q, want %q", ev.Message, want)
		}
	}
}
