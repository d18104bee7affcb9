package remoteactions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/poller"
	"github.com/dexbridge/dexbridge/services/remoteactions"
)

// env is a deployment in miniature against nxsim: the remote action manager, the
// poller (each on its own NATS connection, as separate processes would be) and two
// ingress replicas, A and B, over a discovered cache.
type env struct {
	sim      *nxsim.Instance
	pool     *pgxpool.Pool
	db       *store.DB
	cfg      config.Config
	set      *instances.Set
	url      string // NATS
	subjects events.Subjects
	a, b     string // the ingress replicas' base URLs
	key      string // an API key with read and remediate
	keyID    string
}

type envOptions struct {
	sim      func(*nxsim.Config)
	noPoller bool
	manager  func(*remoteactions.Options)
	// twoReplicas starts a second remote action manager, on its own connection and
	// subject prefix, that serves ingress B alone: requests through A and B then
	// certainly reach different replicas, which share only PostgreSQL.
	twoReplicas bool
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// run starts r until t ends.
func run(t *testing.T, r interface{ Run(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	root := testenv.RepoRoot(t)
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 50 * time.Millisecond, Running: 100 * time.Millisecond, Tick: 10 * time.Millisecond}
		if o.sim != nil {
			o.sim(c)
		}
	})
	pool := testenv.Postgres(t)
	db := store.New(pool)
	cfg := discoverytest.Config(sim, "eu")
	cfg.Limits.PortalRequestsPerSecond, cfg.Limits.EngineRequestsPerSecond = 1000, 1000
	set := discoverytest.Instances(t, cfg, db, nil)
	discoverytest.Discover(t, discoverytest.Discoverer(t, cfg, db, set, nil), "eu")

	e := &env{sim: sim, pool: pool, db: db, cfg: cfg, set: set, url: testenv.NATSURL(t), subjects: events.NewSubjects(testenv.Prefix(t))}
	topics, err := topic.FilesIn(root).Load()
	if err != nil {
		t.Fatal(err)
	}
	worker := connect(t, e.url)
	tuning := remoteactions.DefaultConfig()
	tuning.Concurrency, tuning.ShutdownTimeout, tuning.TriggerTimeout = 16, 5*time.Second, 5*time.Second
	mo := remoteactions.Options{Conn: worker, JS: jetStream(t, worker), Subjects: e.subjects, Store: db, Instances: set,
		Allowlist: topics.Allowlist(), Topics: topics.Catalog(), Config: tuning, Log: logging.Discard()}
	if o.manager != nil {
		o.manager(&mo)
	}
	svc, err := remoteactions.New(mo)
	if err != nil {
		t.Fatal(err)
	}
	run(t, svc)
	subjectsB := e.subjects
	if o.twoReplicas {
		subjectsB = events.NewSubjects(e.subjects.Prefix() + "b")
		second := connect(t, e.url)
		mo.Conn, mo.JS, mo.Subjects = second, jetStream(t, second), subjectsB
		mo.Instances = discoverytest.Instances(t, cfg, db, nil) // clients of its own
		svc, err := remoteactions.New(mo)
		if err != nil {
			t.Fatal(err)
		}
		run(t, svc)
	}
	if !o.noPoller {
		pc := connect(t, e.url)
		tuning := poller.DefaultConfig()
		tuning.Interval = 100 * time.Millisecond
		run(t, poller.New(poller.Options{DB: db, Instances: set, JS: jetStream(t, pc), Subjects: e.subjects,
			Config: tuning, Log: logging.Discard()}))
	}

	keys := auth.NewKeys(db)
	var k store.APIKey
	e.key, k, err = keys.Create(context.Background(), auth.NewKey{Name: "bot", Scopes: []string{"read", "remediate"}})
	if err != nil {
		t.Fatal(err)
	}
	e.keyID = k.ID
	checker := apitest.New(t)
	for i, base := range []*string{&e.a, &e.b} {
		nc := connect(t, e.url)
		subjects := e.subjects
		if i == 1 {
			subjects = subjectsB
		}
		h := ingress.NewHandler(ingress.Options{RPC: natsrpc.NewClient(nc, 10*time.Second), Keys: keys,
			Limiters: ratelimit.NewShared(db), Subjects: subjects, Events: nc, Log: logging.Discard()})
		srv := httptest.NewServer(checker.Handler(t, h))
		t.Cleanup(srv.Close)
		*base = srv.URL
	}
	testenv.Eventually(t, "the remote action managers", func() bool {
		a, _, _ := e.do(t, e.a, http.MethodGet, "/api/v1/remote-actions", nil, nil)
		b, _, _ := e.do(t, e.b, http.MethodGet, "/api/v1/remote-actions", nil, nil)
		return a == http.StatusOK && b == http.StatusOK
	})
	return e
}

// do calls an ingress with the env's key and decodes the JSON answer.
func (e *env) do(t *testing.T, base, method, path string, body any, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", e.key)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
}

// nxsimExecutions is what nxsim recorded of a request.
type nxsimExecution struct {
	RequestID         string            `json:"request_id"`
	Device            string            `json:"device"`
	RemoteAction      string            `json:"remote_action"`
	Status            string            `json:"status"`
	Inputs            map[string]string `json:"inputs"`
	ExternalSource    string            `json:"external_source"`
	ExternalReference string            `json:"external_reference"`
	Reason            string            `json:"reason"`
}

func (e *env) nxsimExecutions(t *testing.T, requestID string) []nxsimExecution {
	t.Helper()
	var out []nxsimExecution
	discoverytest.Control(t, e.sim, "eu", http.MethodGet, "/_nxsim/executions/"+requestID, nil, &out)
	return out
}

func (e *env) setOnline(t *testing.T, online bool, devices ...string) {
	t.Helper()
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/devices/online", map[string]any{"devices": devices, "online": online}, nil)
}

func (e *env) setExecutions(t *testing.T, s nxsim.ExecutionSettings) {
	t.Helper()
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/executions/settings", s, nil)
}

func (e *env) executeCalls(t *testing.T) int64 {
	t.Helper()
	return discoverytest.Counters(t, e.sim, "eu").Endpoints["POST /api/v1/act/execute"]
}

func (e *env) audit(t *testing.T) []store.AuditRecord {
	t.Helper()
	recs, err := e.db.AuditRecords(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }
