package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// withSim points cfg at an nxsim tenant eu and returns the tenant.
func withSim(t *testing.T, cfg *config.Config) *nxsim.Instance {
	t.Helper()
	sim := discoverytest.StartSim(t, nil)
	cfg.Instances = discoverytest.Config(sim, "eu").Instances
	return sim
}

// waitDiscovered polls the status until n instances are up with devices in the cache.
func waitDiscovered(t *testing.T, base, key string, n int) {
	t.Helper()
	waitUntil(t, func() bool {
		var st struct {
			Instances []events.InstanceStatus `json:"instances"`
		}
		up := 0
		if getJSONWithKey(t, base+"/api/v1/status", key, &st) == 200 {
			for _, in := range st.Instances {
				if in.State == "up" && in.Cache.Devices > 0 {
					up++
				}
			}
		}
		return up == n
	})
}

// TestProactiveEventCarriesTheDiagnosis runs the whole product in one process against
// nxsim: discovery fills the cache, nxsim fires "Outlook crashes" for PC-OUTLOOK-PLUGIN
// with its webhook pointed at dexbridge, the webhooks worker asks a topics worker for
// the Outlook diagnosis over NATS, and the chatbot's callback gets an event carrying
// the crashed add-in finding and the Set Outlook plugins remediation.
func TestProactiveEventCarriesTheDiagnosis(t *testing.T) {
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", "process-test-password")
	chatbot := newChatbot(t)
	cfg := testConfig(t)
	sim := withSim(t, &cfg)
	cfg.Webhooks.File = filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml")
	cfg.Proactive.CallbackURL = chatbot.URL
	cfg.Proactive.CallbackSecret = config.Secret("process-callback-secret")
	base, stop := start(t, cfg, "ingress", "devices", "discovery", "topics", "webhooks", "proactive")
	key := apiKey(t, cfg)
	waitDiscovered(t, base, key, 1)

	payload := `{"monitor": "{{alert.monitor.name}}", "status": "{{alert.status}}", "device": "{{device.name}}", "user": "{{user.name}}", "trigger_time": "{{alert.trigger_time}}"}`
	alert, _ := json.Marshal(map[string]any{"monitor": "Outlook crashes", "device": "PC-OUTLOOK-PLUGIN", "webhook": map[string]any{
		"url": base, "path": "/api/v1/webhooks/nexthink", "method": "POST", "payload": payload,
		"auth": map[string]any{"type": "basic", "username": "nexthink", "password": "process-test-password"}}})
	resp, err := http.Post(sim.URL()+"/_nxsim/alerts", "application/json", bytes.NewReader(alert))
	if err != nil {
		t.Fatal(err)
	}
	var fired struct {
		Webhook struct {
			Status int `json:"status"`
		} `json:"webhook"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&fired)
	resp.Body.Close()
	if fired.Webhook.Status != 202 {
		t.Fatalf("nxsim's webhook: got %d, want 202", fired.Webhook.Status)
	}
	waitUntil(t, func() bool { return len(chatbot.received()) == 1 })
	ev := chatbot.received()[0].Event
	d := ev.Diagnosis
	if d == nil || d.Error != "" || d.Topic != "outlook" || d.Source != "live" {
		t.Fatalf("diagnosis: got %+v, want the Outlook topic's, live", d)
	}
	var rules []string
	for _, f := range d.Findings {
		rules = append(rules, f.Rule)
	}
	if !slices.Equal(rules, []string{"outlook_plugin_crashed"}) {
		t.Errorf("findings: got %v, want [outlook_plugin_crashed]", rules)
	}
	if len(d.Findings) == 1 && !strings.Contains(d.Findings[0].Evidence["remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList"].(string), "Grammarly") {
		t.Errorf("evidence: got %v, want the crashed add-in", d.Findings[0].Evidence)
	}
	var rems []string
	for _, r := range ev.Remediations {
		rems = append(rems, r.RemoteAction)
	}
	if len(rems) == 0 || rems[0] != "#set_outlook_plugins" || ev.Assessment != events.AssessFixAvailable {
		t.Errorf("event remediations: got %v (%s), want #set_outlook_plugins first, a fix available", rems, ev.Assessment)
	}
	agree(t, ev)
	if ev.Employee == nil || ev.Employee.Name != "hjordan" || ev.Device == nil || ev.Device.Name != "PC-OUTLOOK-PLUGIN" {
		t.Errorf("event: got employee %+v device %+v", ev.Employee, ev.Device)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestHangupReloadsTopics: SIGHUP makes the process's topics worker load its files
// again; a broken file is refused and the set in force stays.
func TestHangupReloadsTopics(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(testenv.RepoRoot(t), "topics")
	files, _ := filepath.Glob(filepath.Join(src, "*.yaml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t)
	cfg.TopicsDir = dir
	base, _ := start(t, cfg, "ingress", "topics")
	key := apiKey(t, cfg)
	title := func() string {
		var tp events.Topic
		if code := getJSONWithKey(t, base+"/api/v1/topics/onedrive", key, &tp); code != 200 {
			t.Fatalf("GET /api/v1/topics/onedrive: %d", code)
		}
		return tp.Title
	}
	if got := title(); got != "Microsoft OneDrive issues" {
		t.Fatalf("title: got %q", got)
	}
	path := filepath.Join(dir, "onedrive.yaml")
	raw, _ := os.ReadFile(path)
	edit := func(from, to string) {
		if err := os.WriteFile(path, bytes.Replace(raw, []byte(from), []byte(to), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit("title: Microsoft OneDrive issues", "title: OneDrive, renamed")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return title() == "OneDrive, renamed" })

	edit("title: Microsoft OneDrive issues", "title: [unclosed")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The refused file leaves the set in force; a reload over the API says why.
	var refusal struct {
		Problems []string `json:"problems"`
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/admin/reload", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != 422 || len(refusal.Problems) == 0 || !strings.Contains(refusal.Problems[0], "onedrive.yaml") {
		t.Errorf("reload of a broken file: got %d %v, want 422 naming onedrive.yaml", resp.StatusCode, refusal.Problems)
	}
	if got := title(); got != "OneDrive, renamed" {
		t.Errorf("after the refused reload: got %q, want the previous set's title", got)
	}
}
