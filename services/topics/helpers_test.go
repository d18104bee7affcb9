package topics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
	"github.com/dexbridge/dexbridge/services/devices"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/poller"
	"github.com/dexbridge/dexbridge/services/remoteactions"
	"github.com/dexbridge/dexbridge/services/topics"
)

// env is the diagnosis path on real servers, as a chatbot reaches it: the ingress
// handler (every answer checked against the OpenAPI document), NATS, the devices and
// topics workers, PostgreSQL holding a cache that discovery filled from nxsim, and
// nxsim as the tenants eu and us.
type env struct {
	t        *testing.T
	sim      *nxsim.Instance
	db       *store.DB
	nc       *nats.Conn
	subjects events.Subjects
	cfg      config.Config
	set      *instances.Set
	handler  http.Handler
	key      string // scopes read, diagnose and admin
	files    topic.Files
	workers  []*topics.Service
}

type envOptions struct {
	// nqlLimit, when set, replaces the topics workers' NQL rate limit per instance
	// (calls per second, burst one), in this process only.
	nqlLimit float64
	// workers is the number of topics workers (default 1).
	workers int
	// topicsDir replaces the repository's topics.
	topicsDir string
	// actions runs the remote-action manager and the poller too, for refreshes; nxsim
	// then runs executions in 150 ms.
	actions bool
	// refreshTimeout is the topics workers' bound on a refresh (default 20 s).
	refreshTimeout time.Duration
	// fleetSize is nxsim's fleet size (default 200 devices in eu, a tenth in us).
	fleetSize int
	// transport, when set, carries the topics workers' calls to the tenants.
	transport http.RoundTripper
	// usTimeZone, when set, is the us tenant's time zone (both are Europe/Zurich).
	usTimeZone string
	// simClock, when set, is nxsim's clock (a still one keeps last_seen still).
	simClock func() time.Time
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	root := testenv.RepoRoot(t)
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		if o.fleetSize > 0 {
			c.FleetSize = o.fleetSize
		}
		if o.simClock != nil {
			c.Clock = o.simClock
		}
		if o.usTimeZone != "" {
			c.Tenants = nxsim.DefaultTenants(c.FleetSize, 1)
			c.Tenants[1].TimeZone = o.usTimeZone
		}
		if o.actions {
			c.Executions = nxsim.ExecutionTiming{Pending: 50 * time.Millisecond, Running: 100 * time.Millisecond, Tick: 10 * time.Millisecond}
		}
	})
	db := store.New(testenv.Postgres(t))
	nc := testenv.NATS(t)
	e := &env{t: t, sim: sim, db: db, nc: nc, subjects: events.NewSubjects(testenv.Prefix(t)), cfg: discoverytest.Config(sim, "eu", "us")}
	e.set = discoverytest.Instances(t, e.cfg, db, nil)
	discoverytest.Discover(t, discoverytest.Discoverer(t, e.cfg, db, e.set, nil), "eu", "us")

	limiters := ratelimit.NewShared(db)
	tuning := devices.DefaultConfig()
	tuning.Refresh, tuning.Concurrency, tuning.ShutdownTimeout, tuning.Live.RetryFor = time.Hour, 16, 5*time.Second, 500*time.Millisecond
	dev, err := devices.New(devices.Options{
		Conn: nc, Subjects: e.subjects, Cache: db, Instances: e.set, Config: tuning,
		CacheLimiter: limiters.Limiter(ratelimit.CacheKey+":"+e.subjects.Prefix(), ratelimit.Rate{PerSecond: 1000, Burst: 1000}),
		Log:          logging.Discard(), Version: "0.0.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run(dev)
	if o.actions {
		e.runActions()
	}
	if o.refreshTimeout == 0 {
		o.refreshTimeout = 20 * time.Second
	}

	if o.topicsDir == "" {
		o.topicsDir = filepath.Join(root, "topics")
	}
	e.files = topic.FilesIn(root)
	e.files.Dir = o.topicsDir
	live := e.live(o.nqlLimit, o.transport)
	for range max(o.workers, 1) {
		w, err := topics.New(topics.Options{
			Conn: nc, Subjects: e.subjects, Load: e.files.Load, Instances: live, Diagnoses: db, Executions: db, Cache: db,
			CacheLimiter: limiters.Limiter(ratelimit.CacheKey+":"+e.subjects.Prefix(), ratelimit.Rate{PerSecond: 1000, Burst: 1000}),
			Config: topics.Config{MaxAge: 2 * time.Hour, RefreshTimeout: o.refreshTimeout, OnlineWithin: time.Hour, RequestTimeout: 10 * time.Second,
				Concurrency: 16, ShutdownTimeout: 5 * time.Second, Lookup: livedevices.TuningFrom(config.Default())},
			Log: logging.Discard(), Version: "0.0.0",
		})
		if err != nil {
			t.Fatal(err)
		}
		e.workers = append(e.workers, w)
		e.run(w)
	}
	e.handler = apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, 10*time.Second), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: limiters, Subjects: e.subjects, Log: logging.Discard(), RequestTimeout: 10 * time.Second, RefreshTimeout: o.refreshTimeout,
	}))
	e.key = e.newKey("bot", "read", "diagnose", "admin")
	return e
}

// live are the instances as the topics workers ask them: a short retry, so that a
// tenant down fails the test quickly, and optionally a tight NQL limit or another
// transport.
func (e *env) live(limit float64, transport http.RoundTripper) []wrapper.Instance {
	set := e.set
	if limit > 0 || transport != nil {
		set = discoverytest.Instances(e.t, e.cfg, e.db, func(c *nexthink.Config) {
			if limit > 0 {
				c.NQL = ratelimit.NewLocal("nql:"+c.Instance, ratelimit.Rate{PerSecond: limit, Burst: 1})
			}
			if transport != nil {
				c.HTTPClient = &http.Client{Transport: transport}
			}
		})
	}
	var out []wrapper.Instance
	for _, in := range set.List() {
		out = append(out, wrapper.Instance{Name: in.Name, Live: in.Client.WithPolicy(100*time.Millisecond, 300*time.Millisecond)})
	}
	return out
}

// runActions runs the remote-action manager and the poller (polling every 100 ms)
// on connections of their own, as other processes would.
func (e *env) runActions() {
	e.t.Helper()
	root := testenv.RepoRoot(e.t)
	set, err := topic.FilesIn(root).Load()
	if err != nil {
		e.t.Fatal(err)
	}
	conn := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(e.nc.ConnectedUrl(), nats.MaxReconnects(-1))
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			e.t.Fatal(err)
		}
		return nc, js
	}
	nc, js := conn()
	tuning := remoteactions.DefaultConfig()
	tuning.Concurrency, tuning.ShutdownTimeout, tuning.TriggerTimeout = 16, 5*time.Second, 5*time.Second
	svc, err := remoteactions.New(remoteactions.Options{Conn: nc, JS: js, Subjects: e.subjects, Store: e.db, Instances: e.set,
		Allowlist: set.Allowlist(), Topics: set.Catalog(), Config: tuning, Log: logging.Discard()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.run(svc)
	_, pjs := conn()
	pc := poller.DefaultConfig()
	pc.Interval = 100 * time.Millisecond
	e.run(poller.New(poller.Options{DB: e.db, Instances: e.set, JS: pjs, Subjects: e.subjects, Config: pc, Log: logging.Discard()}))
}

func (e *env) run(r interface{ Run(context.Context) error }) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker stopped with %v", err)
		}
	})
}

func (e *env) newKey(name string, scopes ...string) string {
	e.t.Helper()
	return apitest.Key(e.t, e.db, name, scopes...)
}

// do sends a request with key and decodes the JSON answer into out (when not nil).
func (e *env) do(method, path, key, body string, out any) *http.Response {
	e.t.Helper()
	return apitest.Do(e.t, e.handler, method, path, key, body, out)
}

// diagnose asks for a diagnosis; on 200 it decodes the diagnosis, otherwise the
// problem document.
func (e *env) diagnose(topic, device string, refresh bool) (int, events.Diagnosis, map[string]any) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"device": device, "refresh": refresh})
	var raw json.RawMessage
	resp := e.do(http.MethodPost, "/api/v1/topics/"+topic+"/diagnosis", e.key, string(body), &raw)
	var d events.Diagnosis
	var p map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &d); err != nil {
			e.t.Fatal(err)
		}
	} else {
		_ = json.Unmarshal(raw, &p)
		if p == nil {
			p = map[string]any{}
		}
		p["retry_after_header"] = resp.Header.Get("Retry-After")
	}
	return resp.StatusCode, d, p
}

// nqlCalls counts the NQL execute calls the tenant received.
func (e *env) nqlCalls(tenant string) int64 {
	e.t.Helper()
	c := discoverytest.Counters(e.t, e.sim, tenant)
	return c.Endpoints["POST /api/v2/nql/execute"] + c.Endpoints["POST /api/v1/nql/execute"]
}

// discoveredAt is when the last good discovery of the instance read its data.
func (e *env) discoveredAt(instance string) time.Time {
	e.t.Helper()
	_, good, err := e.db.LatestDiscoveryRuns(context.Background())
	if err != nil || good[instance].DataAsOf == nil {
		e.t.Fatalf("no good discovery of %s: %v", instance, err)
	}
	return good[instance].DataAsOf.UTC()
}

// copyTopics copies the repository's topics into a fresh directory a test may change.
func copyTopics(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(t), "topics")
	dst := t.TempDir()
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
