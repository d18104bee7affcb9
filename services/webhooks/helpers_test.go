package webhooks_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

// The sources' secrets in these tests; TestSecretsAreNeverLogged greps for them.
const (
	nexthinkPassword = "nx-webhook-password-7f3a"
	itsmToken        = "itsm-token-5be1c9d2"
	signingSecret    = "signed-secret-0a9d8c7b6e5f"
)

// testRules are the shipped rules plus a Bearer source, a signing source and a
// source with a short suppression window.
func testRules(t testing.TB) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(shipped) + `
  - name: itsm
    auth: {type: bearer}
    delivery_id_header: X-Delivery-Id
    fields: {monitor: alert.name, status: alert.state, user: upn}
    monitors:
      - {name: Slow PC, topic: slow_pc, message: "{{user}}, your PC is slow"}
  - name: signed
    auth: {type: none}
    signature: {tolerance: 5m}
    fields: {monitor: monitor, device: device, status: status}
    monitors:
      - {name: Slow PC, topic: slow_pc}
  - name: quick
    auth: {type: bearer}
    fields: {monitor: monitor, device: device, user: user, status: status}
    monitors:
      - {name: Slow PC, topic: slow_pc, suppression_window: 1500ms}
  - name: ops
    auth: {type: bearer}
    fields: {monitor: monitor, device: device, user: user, status: status}
    monitors:
      - {name: Quiet check, topic: slow_pc, notify_healthy: true, messages: {healthy: "All good on {{device}}"}}
      - {name: Printer on fire}
`
}

var testSecrets = map[string]string{
	"WEBHOOK_NEXTHINK_PASSWORD":     nexthinkPassword,
	"WEBHOOK_ITSM_TOKEN":            itsmToken,
	"WEBHOOK_SIGNED_SIGNING_SECRET": signingSecret,
	"WEBHOOK_QUICK_TOKEN":           itsmToken,
	"WEBHOOK_OPS_TOKEN":             itsmToken,
}

type envOptions struct {
	natsURL         string        // default testenv.NATSURL
	duplicateWindow time.Duration // default 2 min
	publishTimeout  time.Duration
	noSeen          bool   // the receiver does not look at PostgreSQL first
	withoutSecret   string // a variable of testSecrets left unset
}

// env is an ingress (webhook receiver and proactive feed) over real NATS and
// PostgreSQL, with the API document checked on every answer.
type env struct {
	natsURL   string
	nc        *nats.Conn
	js        jetstream.JetStream
	pool      *store.DB
	subjects  events.Subjects
	rules     *webhookmap.Live
	catalog   *topic.Catalog
	api       http.Handler
	logs      *testenv.LogBuffer
	log       *slog.Logger
	dupWindow time.Duration // the WEBHOOKS stream's
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.natsURL == "" {
		o.natsURL = testenv.NATSURL(t)
	}
	nc, err := nats.Connect(o.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{natsURL: o.natsURL, nc: nc, js: js, pool: store.New(testenv.Postgres(t)), subjects: events.NewSubjects(testenv.Prefix(t)), logs: &testenv.LogBuffer{}}
	e.log, _ = logging.New(e.logs, "debug")
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(path, []byte(testRules(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == o.withoutSecret {
			return ""
		}
		return testSecrets[k]
	}
	e.rules, err = webhookmap.OpenLive(path, getenv, nil, e.log)
	if err != nil {
		t.Fatal(err)
	}
	topics, err := topic.FilesIn(testenv.RepoRoot(t)).Load()
	if err != nil {
		t.Fatal(err)
	}
	e.catalog = topics.Catalog()
	e.dupWindow = o.duplicateWindow
	if e.dupWindow == 0 {
		e.dupWindow = config.Default().Webhooks.DuplicateWindow.D()
	}
	tuning := ingress.WebhookConfig{PublishTimeout: o.publishTimeout, DuplicateWindow: e.dupWindow}
	if tuning.PublishTimeout == 0 {
		tuning.PublishTimeout = ingress.DefaultConfig().Webhooks.PublishTimeout
	}
	ro := ingress.WebhookReceiverOptions{JS: js, Subjects: e.subjects, Rules: e.rules, Ledger: e.pool, WebhookConfig: tuning, Log: e.log}
	if o.noSeen {
		ro.Ledger = neverSeen{e.pool}
	}
	e.api = apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		Keys: auth.NewKeys(e.pool), Credentials: auth.NewCredentials(nil), Limiters: ratelimit.NewShared(e.pool),
		Subjects: e.subjects, Log: e.log, Webhooks: ingress.NewWebhookReceiver(ro),
		Proactive: ingress.NewProactiveFeed(ingress.ProactiveFeedOptions{DB: e.pool, Conn: nc, Subjects: e.subjects, Log: e.log}),
	}))
	return e
}

// neverSeen is a ledger that never finds a webhook dealt with: the receiver publishes
// every delivery, and only JetStream and the worker tell repeats.
type neverSeen struct{ *store.DB }

func (neverSeen) WebhookDone(context.Context, string) (bool, error) { return false, nil }

type req struct {
	method string // default POST
	source string // default nexthink
	body   string
	ctype  string // default application/json
	basic  *[2]string
	bearer string
	header map[string]string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) send(t *testing.T, r req) answer {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.source == "" {
		r.source = "nexthink"
	}
	hr := httptest.NewRequest(r.method, "/api/v1/webhooks/"+r.source, strings.NewReader(r.body))
	if r.ctype == "" {
		r.ctype = "application/json"
	}
	hr.Header.Set("Content-Type", r.ctype)
	if r.basic != nil {
		hr.SetBasicAuth(r.basic[0], r.basic[1])
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, hr)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return answer{status: rec.Code, header: rec.Header(), body: body}
}

// nexthink posts a webhook as the shipped nexthink source expects it.
func (e *env) nexthink(t *testing.T, payload string, header map[string]string) answer {
	t.Helper()
	return e.send(t, req{body: payload, basic: &[2]string{"nexthink", nexthinkPassword}, header: header})
}

func alert(monitor, status, device, user, trigger string) string {
	b, _ := json.Marshal(map[string]string{"monitor": monitor, "status": status, "device": device, "user": user,
		"trigger_time": trigger, "recovery_time": "", "context": `{"crashes":3}`, "priority": "high"})
	return string(b)
}

// worker runs a webhooks worker on its own NATS connection (so a test can kill it);
// stop cancels it and waits for Run to return.
type worker struct {
	nc   *nats.Conn
	stop func()
}

func (e *env) startWorker(t *testing.T, mod func(*webhooks.Options)) *worker {
	t.Helper()
	nc, err := nats.Connect(e.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o := webhooks.Options{
		Conn: nc, JS: js, Subjects: e.subjects, DB: e.pool, Rules: e.rules,
		Resolver: webhooks.CacheResolver{DB: e.pool}, Topics: e.catalog, Callback: true,
		Config: webhooks.Config{Concurrency: 4, AckWait: time.Second, MaxDeliveries: 3, RetryBase: 50 * time.Millisecond,
			DiagnosisTimeout: webhooks.DefaultConfig().DiagnosisTimeout, DuplicateWindow: e.dupWindow, ShutdownTimeout: 5 * time.Second},
		Log: e.log,
	}
	if mod != nil {
		mod(&o)
	}
	w := webhooks.NewWorker(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker stopped with %v", err)
			}
			nc.Close()
		})
	}
	t.Cleanup(stop)
	return &worker{nc: nc, stop: stop}
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) deliveries(t *testing.T) []store.WebhookDelivery {
	t.Helper()
	ds, err := e.pool.WebhookDeliveries(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func (e *env) events(t *testing.T) []store.ProactiveEvent {
	t.Helper()
	evs, err := e.pool.ProactiveEvents(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// cacheDevice is a device and its users, most recent first, as discovery loads them.
type cacheDevice struct {
	name, uid string
	users     []string
}

// loadCache fills the cache of instance eu the way discovery does (COPY, swap), so the resolver reads real rows.
func loadCache(t *testing.T, db *store.DB, devices ...cacheDevice) {
	t.Helper()
	ctx := context.Background()
	lease, ok, err := db.TryDiscoveryLease(ctx, "eu")
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	defer lease.Release(ctx)
	now := time.Now().UTC()
	swap, err := lease.BeginSwap(ctx, now.Add(-30*24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	var devs []*store.StagedDevice
	var acts []*store.StagedActivity
	users := map[string]bool{}
	for _, d := range devices {
		seen := now.Add(-5 * time.Minute)
		devs = append(devs, &store.StagedDevice{CollectorUID: d.uid, Name: d.name, Platform: "Windows", LastSeen: &seen, Fields: []byte(`{}`)})
		for i, u := range d.users {
			at := now.Add(-time.Duration(i+1) * time.Hour)
			acts = append(acts, &store.StagedActivity{CollectorUID: d.uid, UserName: u, LastActivity: &at})
			users[u] = true
		}
	}
	var us []*store.StagedUser
	for u := range users {
		us = append(us, &store.StagedUser{Name: u, UPN: u + "@example.com"})
	}
	if _, err := swap.CopyDevices(ctx, iter(devs)); err != nil {
		t.Fatal(err)
	}
	if _, err := swap.CopyUsers(ctx, iter(us)); err != nil {
		t.Fatal(err)
	}
	if _, err := swap.CopyActivity(ctx, iter(acts)); err != nil {
		t.Fatal(err)
	}
	if _, err := swap.Finish(ctx); err != nil {
		t.Fatal(err)
	}
}

func iter[T any](xs []*T) func() (*T, error) {
	i := 0
	return func() (*T, error) {
		if i == len(xs) {
			return nil, nil
		}
		i++
		return xs[i-1], nil
	}
}

// theFleet is the scenario part of nxsim's fleet the tests use.
var theFleet = []cacheDevice{
	{"PC-OUTLOOK-PLUGIN", "0e6a3f7c-0000-4000-8000-000000000001", []string{"hjordan"}},
	{"PC-ONEDRIVE", "0e6a3f7c-0000-4000-8000-000000000002", []string{"pparker"}},
	{"PC-LOW-DISK", "0e6a3f7c-0000-4000-8000-000000000003", []string{"asmith"}},
	{"PC-SHARED", "0e6a3f7c-0000-4000-8000-000000000004", []string{"bwayne", "ckent", "dprince"}},
	{"PC-NOBODY", "0e6a3f7c-0000-4000-8000-000000000005", nil},
}
