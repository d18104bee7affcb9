package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestWebhookToCallbackInOneProcess runs the ingress, the webhooks worker and the
// callback dispatcher as `dexbridge run ingress webhooks proactive` would, with the
// shipped rules and a cache a discovery filled: a Nexthink webhook comes out as a
// callback, and the feed has it. No topics worker runs, so the device cannot be
// checked: the employee is told so, and offered nothing.
func TestWebhookToCallbackInOneProcess(t *testing.T) {
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", "process-test-password")
	chatbot := newChatbot(t)
	cfg := testConfig(t)
	withSim(t, &cfg)
	cfg.Webhooks.File = filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml")
	cfg.Proactive.CallbackURL = chatbot.URL
	cfg.Proactive.CallbackSecret = config.Secret("process-callback-secret")
	db := store.New(testenv.Migrated(t, cfg.DatabaseURL.Reveal()))
	discoverytest.Discover(t, discoverytest.Discoverer(t, cfg, db, discoverytest.Instances(t, cfg, db, nil), nil), "eu")
	base, stop := start(t, cfg, "ingress", "webhooks", "proactive")

	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/webhooks/nexthink",
		strings.NewReader(`{"monitor":"Low disk space","status":"open","device":"PC-LOW-DISK","user":"asmith","trigger_time":"2026-01-02 03:04:05"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("nexthink", "process-test-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("webhook: got %d, want 202", resp.StatusCode)
	}
	waitUntil(t, func() bool { return len(chatbot.received()) == 1 })
	ev := chatbot.received()[0].Event
	if ev.Employee == nil || ev.Employee.Name != "asmith" || ev.Device.Name != "PC-LOW-DISK" || ev.Topic != "slow_pc" ||
		ev.Assessment != events.AssessNotChecked || len(ev.Remediations) != 0 || ev.Diagnosis == nil || ev.Diagnosis.Error == "" ||
		!strings.Contains(ev.Message, "I could not check the device right now") {
		t.Errorf("callback: got %+v", ev)
	}
	var feed struct {
		Events []events.ProactiveEvent `json:"events"`
	}
	if code := getJSONWithKey(t, base+"/api/v1/proactive/events", apiKey(t, cfg), &feed); code != 200 || len(feed.Events) != 1 || feed.Events[0].ID != ev.ID {
		t.Errorf("feed: got %d %+v", code, feed)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// chatbot is a callback endpoint that keeps the events posted to it, their
// signatures unchecked (the tests of subscriptions check those with callbacktest).
type chatbot struct {
	*httptest.Server
	mu  sync.Mutex
	got []events.ProactiveEventChanged
}

func newChatbot(t *testing.T) *chatbot {
	t.Helper()
	c := &chatbot{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc events.ProactiveEventChanged
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &doc)
		c.mu.Lock()
		c.got = append(c.got, doc)
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

// received is every event posted so far.
func (c *chatbot) received() []events.ProactiveEventChanged {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// waitUntil polls cond until it holds (testenv.Eventually).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, "the condition", cond)
}
