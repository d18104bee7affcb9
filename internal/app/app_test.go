package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NATS.URL = testenv.NATSURL(t)
	cfg.NATS.SubjectPrefix = testenv.Prefix(t)
	cfg.DatabaseURL = config.Secret(testenv.PostgresURL(t))
	cfg.TopicsDir = filepath.Join(testenv.RepoRoot(t), "topics")
	cfg.RemoteActionsFile = filepath.Join(testenv.RepoRoot(t), "config", "remote_actions.yaml")
	cfg.QueriesFile = filepath.Join(testenv.RepoRoot(t), "config", "queries.yaml")
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs the process in the background and returns the ingress base URL and a
// stop function that returns Run's error.
func start(t *testing.T, cfg config.Config, services ...string) (string, func() error) {
	t.Helper()
	return startLogged(t, cfg, logging.Discard(), services...)
}

// startLogged is start with the process's logs going to log.
func startLogged(t *testing.T, cfg config.Config, log *slog.Logger, services ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan app.Ready, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- app.Run(ctx, app.Options{Config: cfg, Services: services, Log: log, Version: "0.0.0-test",
			OnReady: func(r app.Ready) { readyc <- r }})
	}()
	var base string
	select {
	case r := <-readyc:
		if r.IngressAddr != nil {
			base = "http://" + r.IngressAddr.String()
		}
	case err := <-errc:
		cancel()
		t.Fatalf("run: %v", err)
	case <-readyDeadline(t):
		cancel()
		t.Fatal("not ready before the test's deadline")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

// apiKey makes a key with every scope in the process's database.
func apiKey(t *testing.T, cfg config.Config) string {
	t.Helper()
	ctx := context.Background()
	pool, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	secret, _, err := auth.NewKeys(store.New(pool)).Create(ctx, auth.NewKey{Name: "test", Scopes: []string{"read", "diagnose", "remediate", "admin"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	return getJSONWithKey(t, url, "", into)
}

func getJSONWithKey(t *testing.T, url, key string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestRequestPathEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	base, stop := start(t, cfg)
	key := apiKey(t, cfg)

	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if code := getJSON(t, base+"/readyz", &ready); code != 200 || ready.Checks["nats"] != "ok" || ready.Checks["postgres"] != "ok" {
		t.Fatalf("readyz: got %d %+v, want 200 with nats and postgres ok", code, ready)
	}
	var list struct {
		Topics []events.Topic `json:"topics"`
	}
	var unauth map[string]any
	if code := getJSON(t, base+"/api/v1/topics", &unauth); code != 401 || unauth["code"] != "unauthorized" {
		t.Fatalf("without a key: got %d %v, want 401 unauthorized", code, unauth)
	}
	if code := getJSONWithKey(t, base+"/api/v1/topics", key, &list); code != 200 {
		t.Fatalf("GET /api/v1/topics: got %d", code)
	}
	ids := map[string]bool{}
	for _, tp := range list.Topics {
		ids[tp.ID] = true
	}
	for _, want := range []string{"outlook", "onedrive", "slow_pc"} {
		if !ids[want] {
			t.Errorf("topic %q missing from %v", want, ids)
		}
	}
	var prob map[string]any
	if code := getJSONWithKey(t, base+"/api/v1/topics/nope", key, &prob); code != 404 || prob["code"] != "not_found" {
		t.Errorf("unknown topic: got %d %v, want 404 not_found", code, prob)
	}
	if code := getJSONWithKey(t, base+"/api/v1/topics?platform=Linux", key, &prob); code != 400 || prob["field"] != "platform" {
		t.Errorf("bad platform: got %d %v, want 400 naming the field", code, prob)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`dexbridge_http_requests_total{method="GET",route="/api/v1/topics",status="200"} 1`,
		`dexbridge_http_requests_total{method="GET",route="/api/v1/topics/{topic}",status="404"} 1`,
		`dexbridge_nats_request_duration_seconds_count{outcome="not_found",subject="` + cfg.NATS.SubjectPrefix + `.req.topics.get"} 1`,
		`dexbridge_nats_handler_duration_seconds_count{outcome="ok",subject="` + cfg.NATS.SubjectPrefix + `.req.topics.list"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("clean stop: got %v, want nil", err)
	}
}

// TestGracefulShutdownFinishesInFlightRequests: a request waiting on a worker when
// the process is told to stop still gets its answer.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	cfg := testConfig(t)
	// Only the ingress runs in the process; a slow stand-in worker answers topics.
	nc, err := nats.Connect(cfg.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	arrived, release := make(chan struct{}), make(chan struct{})
	sub, err := nc.Subscribe(events.NewSubjects(cfg.NATS.SubjectPrefix).Of(events.TopicsList), func(m *nats.Msg) {
		close(arrived)
		<-release
		reply, _ := json.Marshal(events.TopicsListReply{Header: events.NewHeader(events.TypeTopicsListReply), Topics: []events.Topic{}})
		_ = m.Respond(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	base, stop := start(t, cfg, "ingress")
	key := apiKey(t, cfg)
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/topics", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	<-arrived
	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	// New connections are refused once shutdown has begun...
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := http.Get(base + "/healthz"); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...but the request in flight is answered.
	close(release)
	if got := <-result; got != 200 {
		t.Errorf("in-flight request: got status %d, want 200", got)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestUnknownServiceIsRefused(t *testing.T) {
	err := app.Run(context.Background(), app.Options{Config: config.Default(), Services: []string{"ingress", "nope"}, Log: logging.Discard()})
	if err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Errorf("got %v, want an error naming the unknown service", err)
	}
}

// webhooksForBothTenants writes the shipped webhook rules with a second source,
// nexthink-us, bound to the us instance and mapped like nexthink (bound to eu): a
// source resolves people and devices only on its own instance.
func webhooksForBothTenants(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	sources := doc["sources"].([]any)
	us := maps.Clone(sources[0].(map[string]any))
	us["name"], us["instance"] = "nexthink-us", "us"
	doc["sources"] = append(sources, us)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readyDeadline fires shortly before the test binary's deadline: a loaded machine may
// take long to start a stack, and only a stack that never gets ready is a failure.
func readyDeadline(t *testing.T) <-chan time.Time {
	d, ok := t.Deadline()
	if !ok {
		return time.After(5 * time.Minute)
	}
	return time.After(time.Until(d) - 30*time.Second)
}
