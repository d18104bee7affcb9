package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/callbacktest"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/proactive"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

const e2eCallbackSecret = "e2e-callback-secret-9d8c"

// docsPayload is the payload template docs/webhooks.md tells Nexthink administrators
// to configure: the first ```json block of its "Webhooks from Nexthink" section.
func docsPayload(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## Webhooks from Nexthink")
	_, block, ok2 := strings.Cut(section, "```json\n")
	tmpl, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/webhooks.md: no ```json payload template under \"## Webhooks from Nexthink\"")
	}
	return tmpl
}

// fire posts an alert to nxsim, which sends its webhook to dexbridge.
func fire(t *testing.T, sim *nxsim.Instance, body map[string]any) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(sim.URL()+"/_nxsim/alerts", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("nxsim: got %d %v", resp.StatusCode, out)
	}
	return out
}

// TestEndToEndWithNxsim: nxsim fires "Outlook crashes" for PC-OUTLOOK-PLUGIN with its
// webhook pointed at dexbridge's receiver and docs/webhooks.md's payload template; dexbridge
// delivers a signed proactive event to the chatbot's callback for employee hjordan
// on that device; the recovery closes it.
func TestEndToEndWithNxsim(t *testing.T) {
	root := testenv.RepoRoot(t)
	sim, err := nxsim.Start(context.Background(), nxsim.Config{Addr: "127.0.0.1:0", FleetSize: 20,
		TopicsDir: filepath.Join(root, "topics"), QueriesFile: filepath.Join(root, "config", "queries.yaml"), Logger: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })

	e := newEnv(t, envOptions{})
	// The cache as discovery would fill it from this tenant: the alert's own fields
	// (fired without a webhook) give the device's collector UID and its user.
	fields := fire(t, sim, map[string]any{"monitor": "Outlook crashes", "device": "PC-OUTLOOK-PLUGIN"})["alert"].(map[string]any)
	loadCache(t, e.pool, cacheDevice{name: "PC-OUTLOOK-PLUGIN", uid: fields["device.collector.uid"].(string),
		users: []string{fields["user.name"].(string)}})

	receiver := httptest.NewServer(e.api)
	t.Cleanup(receiver.Close)
	cb := callbacktest.New(t, e2eCallbackSecret)
	chatbot := httptest.NewServer(cb)
	t.Cleanup(chatbot.Close)
	// The configured callback is a subscription; the app makes it before the worker
	// starts, here the dispatcher started below may come second.
	if err := e.pool.EnsureConfigSubscription(context.Background(), chatbot.URL+"/proactive"); err != nil {
		t.Fatal(err)
	}
	e.startWorker(t, func(o *webhooks.Options) { o.Callback = true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		tuning := proactive.DefaultConfig()
		tuning.PollInterval = 100 * time.Millisecond
		done <- proactive.NewDispatcher(proactive.DispatcherOptions{DB: e.pool, Conn: e.nc, Subjects: e.subjects,
			URL: chatbot.URL + "/proactive", Secret: []byte(e2eCallbackSecret), Config: tuning, Log: e.log}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	webhook := map[string]any{"url": receiver.URL, "path": "/api/v1/webhooks/nexthink", "method": "POST",
		"payload": docsPayload(t), "auth": map[string]any{"type": "basic", "username": "nexthink", "password": nexthinkPassword}}
	out := fire(t, sim, map[string]any{"monitor": "Outlook crashes", "device": "PC-OUTLOOK-PLUGIN", "context": `{"crashes": 4}`, "webhook": webhook})
	if wh := out["webhook"].(map[string]any); wh["status"] != 202.0 {
		t.Fatalf("nxsim's webhook: got %v, want 202", wh)
	}
	waitFor(t, "the callback", func() bool { return len(cb.Received()) == 1 })
	got := cb.Received()[0].Body
	ev := got.Event
	if got.Kind != "opened" || ev.Status != "open" || ev.Monitor != "Outlook crashes" || ev.Topic != "outlook" || ev.Source != "nexthink" {
		t.Errorf("got kind %s status %s monitor %s topic %s source %s", got.Kind, ev.Status, ev.Monitor, ev.Topic, ev.Source)
	}
	if ev.Employee == nil || ev.Employee.Name != "hjordan" || ev.Employee.UPN != "hjordan@example.com" {
		t.Errorf("employee: got %+v, want hjordan", ev.Employee)
	}
	if ev.Device == nil || ev.Device.Name != "PC-OUTLOOK-PLUGIN" || ev.Device.CollectorUID != fields["device.collector.uid"] || ev.Device.Instance != "eu" {
		t.Errorf("device: got %+v, want PC-OUTLOOK-PLUGIN with its collector uid", ev.Device)
	}
	if ev.Alert.TriggerTime == nil || ev.Alert.Priority != "medium" || ev.Alert.Context.(map[string]any)["crashes"] != 4.0 {
		t.Errorf("alert: got %+v", ev.Alert)
	}
	// This worker has no Diagnoser, so the event has no diagnosis and offers nothing
	// (TestEventsCarryTheDiagnosis covers the hook; internal/app's tests run the real
	// one, a topics worker over NATS).
	if ev.Diagnosis != nil || ev.Assessment != events.AssessNotChecked || len(ev.Remediations) != 0 ||
		!strings.HasPrefix(ev.Message, "Hi hjordan, Nexthink reported Outlook crashes on PC-OUTLOOK-PLUGIN. I could not check the device") {
		t.Errorf("got diagnosis %+v assessment %s remediations %v message %q, want none, not checked, nothing offered",
			ev.Diagnosis, ev.Assessment, ev.Remediations, ev.Message)
	}

	fire(t, sim, map[string]any{"monitor": "Outlook crashes", "status": "closed", "device": "PC-OUTLOOK-PLUGIN", "webhook": webhook})
	waitFor(t, "the recovery callback", func() bool { return len(cb.Received()) == 2 })
	closed := cb.Received()[1].Body
	if c := closed.Event; closed.Kind != "closed" || c.ID != ev.ID || c.Status != "closed" || c.Alert.Status != "closed" ||
		c.Alert.RecoveryTime == nil || c.Message != "Outlook is stable again on PC-OUTLOOK-PLUGIN." || c.CloseMessage != c.Message {
		t.Errorf("recovery: got kind %s event %s status %s alert %+v message %q close message %q, want the same event closed with nxsim's recovery time",
			closed.Kind, c.ID, c.Status, c.Alert, c.Message, c.CloseMessage)
	}
	if bad := cb.Bad(); len(bad) > 0 {
		t.Errorf("callbacks refused: %v", bad)
	}
}
