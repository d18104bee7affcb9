package ingress_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/ingress"
	"github.com/dexbridge/dexbridge/services/topics"
)

const (
	adminUser = "operator"
	adminPass = "correct-horse-battery"
)

type env struct {
	handler http.Handler
	logs    *testenv.LogBuffer
	db      *store.DB
}

// startTopics runs a topics worker on the repository's topics, taking concurrency
// requests at a time, until the test ends.
func startTopics(t *testing.T, nc *nats.Conn, subjects events.Subjects, concurrency int) {
	t.Helper()
	tuning := topics.DefaultConfig()
	tuning.Concurrency, tuning.ShutdownTimeout = concurrency, 5*time.Second
	svc, err := topics.New(topics.Options{Conn: nc, Subjects: subjects, Load: topic.FilesIn(testenv.RepoRoot(t)).Load, Config: tuning, Log: logging.Discard(), Version: "0.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// newEnv runs a topics worker and an ingress handler on real NATS and PostgreSQL.
func newEnv(t *testing.T) *env {
	t.Helper()
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	logs := &testenv.LogBuffer{}
	log, _ := logging.New(logs, "debug")
	startTopics(t, nc, subjects, 8)
	h := apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		RPC:         natsrpc.NewClient(nc, 5*time.Second),
		Keys:        auth.NewKeys(db),
		Credentials: auth.NewCredentials([]auth.Credential{{Who: "admin", User: adminUser, Password: adminPass}, {Who: "instance:eu", User: "eu-client", Password: "eu-client-secret"}}),
		Limiters:    ratelimit.NewShared(db),
		Subjects:    subjects,
		Log:         log,
	}))
	return &env{handler: h, logs: logs, db: db}
}

var clientSeq struct {
	sync.Mutex
	n int
}

// freshClient is a new client address, so the 1-per-10s key endpoint limit of one
// call does not bleed into the next.
func freshClient() string {
	clientSeq.Lock()
	defer clientSeq.Unlock()
	clientSeq.n++
	return fmt.Sprintf("10.1.%d.%d:40000", clientSeq.n/250, clientSeq.n%250+1)
}

type call struct {
	method, path, body, contentType string
	basic                           [2]string
	key, bearer, client             string
}

func (e *env) do(t *testing.T, c call) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.client == "" {
		c.client = freshClient()
	}
	req.RemoteAddr = c.client
	if c.body != "" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.basic[0] != "" {
		req.SetBasicAuth(c.basic[0], c.basic[1])
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	resp := rec.Result()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	return resp, body
}

func (e *env) createKey(t *testing.T, body string) (string, map[string]any) {
	t.Helper()
	resp, got := e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: body, basic: [2]string{adminUser, adminPass}})
	if resp.StatusCode != 201 {
		t.Fatalf("create key: got %d %v", resp.StatusCode, got)
	}
	return got["key"].(string), got
}

func TestKeysAndScopes(t *testing.T) {
	e := newEnv(t)
	reader, created := e.createKey(t, `{"name":"service desk bot","scopes":["read"]}`)
	if !strings.HasPrefix(reader, "dxb_") || len(reader) < 40 || created["id"] == "" || created["status"] != "active" {
		t.Fatalf("created key: %v", created)
	}
	diagnoser, _ := e.createKey(t, `{"name":"diag only","scopes":["diagnose"]}`)

	tests := []struct {
		name       string
		c          call
		status     int
		code       string
		authHeader bool
	}{
		{"no key", call{method: "GET", path: "/api/v1/topics"}, 401, "unauthorized", true},
		{"wrong key", call{method: "GET", path: "/api/v1/topics", key: "dxb_" + strings.Repeat("A", 43)}, 401, "unauthorized", true},
		{"not a key", call{method: "GET", path: "/api/v1/topics", key: "hunter2"}, 401, "unauthorized", true},
		{"X-API-Key", call{method: "GET", path: "/api/v1/topics", key: reader}, 200, "", false},
		{"Bearer", call{method: "GET", path: "/api/v1/topics", bearer: reader}, 200, "", false},
		{"missing scope", call{method: "GET", path: "/api/v1/topics", key: diagnoser}, 403, "forbidden", false},
		{"subject injection", call{method: "GET", path: "/api/v1/topics/a.b", key: reader}, 400, "invalid_request", false},
		{"wildcard injection", call{method: "GET", path: "/api/v1/topics/%3E", key: reader}, 400, "invalid_request", false},
		{"health needs no key", call{method: "GET", path: "/healthz"}, 200, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, tt.c)
			if resp.StatusCode != tt.status || (tt.code != "" && body["code"] != tt.code) {
				t.Errorf("got %d %v, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if got := resp.Header.Get("WWW-Authenticate") != ""; got != tt.authHeader {
				t.Errorf("WWW-Authenticate present: got %v, want %v", got, tt.authHeader)
			}
		})
	}
}

func TestKeyManagement(t *testing.T) {
	e := newEnv(t)
	admin := [2]string{adminUser, adminPass}

	// Nexthink instance credentials may create keys too; wrong ones may not.
	resp, body := e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: `{"name":"via instance"}`, basic: [2]string{"eu-client", "eu-client-secret"}})
	if resp.StatusCode != 201 || body["created_by"] != "instance:eu" {
		t.Errorf("instance credentials: got %d %v", resp.StatusCode, body)
	}
	resp, body = e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: `{"name":"x"}`, basic: [2]string{adminUser, "wrong"}})
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong password: got %d %v", resp.StatusCode, body)
	}

	// The legacy V6 endpoint answers with api_key.
	resp, body = e.do(t, call{method: "POST", path: "/v1/api_key", basic: admin})
	legacy, _ := body["api_key"].(string)
	if resp.StatusCode != 201 || !strings.HasPrefix(legacy, "dxb_") {
		t.Errorf("legacy endpoint: got %d %v", resp.StatusCode, body)
	}

	// One request per 10 s per client on the key endpoints, POST and GET alike.
	client := freshClient()
	if resp, body = e.do(t, call{method: "GET", path: "/api/v1/api-keys", basic: admin, client: client}); resp.StatusCode != 200 {
		t.Fatalf("list: got %d %v", resp.StatusCode, body)
	}
	keys := body["api_keys"].([]any)
	raw, _ := json.Marshal(keys)
	if len(keys) != 2 || strings.Contains(string(raw), "dxb_") || strings.Contains(string(raw), "hash") {
		t.Errorf("list: got %s; want two keys without secrets", raw)
	}
	resp, body = e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: `{"name":"again"}`, basic: admin, client: client})
	if resp.StatusCode != 429 || body["code"] != "rate_limited" || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("second call within 10s: got %d %v %v, want 429 with Retry-After and RateLimit headers", resp.StatusCode, body, resp.Header)
	}

	// Revocation with an admin-scoped key, then the key no longer works.
	adminKey, _ := e.createKey(t, `{"name":"ops","scopes":["admin","read"]}`)
	victim, v := e.createKey(t, `{"name":"victim","scopes":["read"]}`)
	if resp, _ := e.do(t, call{method: "GET", path: "/api/v1/topics", key: victim}); resp.StatusCode != 200 {
		t.Fatalf("victim before revocation: %d", resp.StatusCode)
	}
	resp, body = e.do(t, call{method: "DELETE", path: "/api/v1/api-keys/" + v["id"].(string), key: adminKey})
	if resp.StatusCode != 200 || body["status"] != "revoked" {
		t.Fatalf("revoke: got %d %v", resp.StatusCode, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := e.do(t, call{method: "GET", path: "/api/v1/topics", key: victim})
		if resp.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked key still accepted after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body = e.do(t, call{method: "DELETE", path: "/api/v1/api-keys/key_0000000000000000", key: adminKey}); resp.StatusCode != 404 {
		t.Errorf("revoke unknown: got %d %v", resp.StatusCode, body)
	}
	if resp, _ = e.do(t, call{method: "DELETE", path: "/api/v1/api-keys/key_0000000000000000", key: victim}); resp.StatusCode != 401 {
		t.Errorf("revoke with a revoked key: got %d", resp.StatusCode)
	}

	// Secrets never reach the logs.
	logs := e.logs.String()
	for _, secret := range []string{adminPass, "eu-client-secret", victim, adminKey, legacy} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret %q", secret[:6])
		}
	}
}

// TestAdminKeyOnTheKeyEndpoints: GET and POST /api/v1/api-keys take an admin-scoped
// API key as well as Basic (X-API-Key or Bearer), under the same limit of one request
// per 10 s per client; a key without the admin scope is refused, a wrong one too.
func TestAdminKeyOnTheKeyEndpoints(t *testing.T) {
	e := newEnv(t)
	adminKey, admin := e.createKey(t, `{"name":"ops","scopes":["admin"]}`)
	reader, _ := e.createKey(t, `{"name":"bot","scopes":["read","diagnose","remediate"]}`)

	resp, body := e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: `{"name":"made by a key","scopes":["read"]}`, key: adminKey})
	made, _ := body["key"].(string)
	if resp.StatusCode != 201 || !strings.HasPrefix(made, "dxb_") || body["created_by"] != "key:"+admin["id"].(string) {
		t.Fatalf("create with an admin key: got %d %v, want 201 created by the key", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, call{method: "GET", path: "/api/v1/topics", key: made}); resp.StatusCode != 200 {
		t.Errorf("the key an admin key made: got %d, want it to work", resp.StatusCode)
	}
	resp, body = e.do(t, call{method: "GET", path: "/api/v1/api-keys", bearer: adminKey})
	if keys, _ := body["api_keys"].([]any); resp.StatusCode != 200 || len(keys) != 3 {
		t.Errorf("list with an admin key as Bearer: got %d %v, want the 3 keys", resp.StatusCode, body)
	}

	tests := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"a key without the admin scope", call{method: "GET", path: "/api/v1/api-keys", key: reader}, 403, "forbidden"},
		{"a key without the admin scope creating", call{method: "POST", path: "/api/v1/api-keys", body: `{"name":"x"}`, key: reader}, 403, "forbidden"},
		{"a wrong key", call{method: "GET", path: "/api/v1/api-keys", key: "dxb_" + strings.Repeat("B", 43)}, 401, "unauthorized"},
		{"nothing", call{method: "GET", path: "/api/v1/api-keys"}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		if resp, body := e.do(t, tt.c); resp.StatusCode != tt.status || body["code"] != tt.code {
			t.Errorf("%s: got %d %v, want %d %s", tt.name, resp.StatusCode, body, tt.status, tt.code)
		}
	}

	// The limit holds for keys as for Basic, whatever the credential of the next call.
	client := freshClient()
	if resp, body := e.do(t, call{method: "GET", path: "/api/v1/api-keys", key: adminKey, client: client}); resp.StatusCode != 200 {
		t.Fatalf("first call: got %d %v", resp.StatusCode, body)
	}
	for _, c := range []call{
		{method: "GET", path: "/api/v1/api-keys", key: adminKey, client: client},
		{method: "POST", path: "/api/v1/api-keys", body: `{"name":"y"}`, key: adminKey, client: client},
		{method: "GET", path: "/api/v1/api-keys", basic: [2]string{adminUser, adminPass}, client: client},
	} {
		if resp, body := e.do(t, c); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s within 10 s: got %d %v, want 429 with Retry-After", c.method, resp.StatusCode, body)
		}
	}
	if strings.Contains(e.logs.String(), adminKey) || strings.Contains(e.logs.String(), made) {
		t.Error("the logs hold a key")
	}
}

func TestExpiredKeyAndPerKeyLimit(t *testing.T) {
	e := newEnv(t)
	// expires_in counts from the server's clock: the key is valid when created however
	// slow the request, and is refused once its second has passed.
	short, _ := e.createKey(t, `{"name":"short","scopes":["read"],"expires_in":"1s"}`)
	testenv.Eventually(t, "the expired key refused", func() bool {
		resp, _ := e.do(t, call{method: "GET", path: "/api/v1/topics", key: short})
		return resp.StatusCode == 401
	})
	// One call every 100 s: the second call is refused however long the first took.
	slow, _ := e.createKey(t, `{"name":"slow","scopes":["read"],"rate_limit_per_second":0.01}`)
	if resp, _ := e.do(t, call{method: "GET", path: "/api/v1/topics", key: slow}); resp.StatusCode != 200 {
		t.Fatalf("first call: %d", resp.StatusCode)
	}
	resp, body := e.do(t, call{method: "GET", path: "/api/v1/topics", key: slow})
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "0.01" {
		t.Errorf("second call: got %d %v %v, want 429 with the key's limit", resp.StatusCode, body, resp.Header)
	}
	// A refusal is logged at debug: a noisy client does not fill the log.
	var refusals int
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var l struct {
			Level, Msg string
			Status     int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http request" && l.Status == 429 {
			refusals++
			if l.Level != "DEBUG" {
				t.Errorf("429 logged at %s: %s", l.Level, line)
			}
		}
	}
	if refusals != 1 {
		t.Errorf("access log: %d lines for the 429, want 1 (at debug)", refusals)
	}
}

// TestDelegateKeyIsShownWithItsEmployee: a delegate key is created bound to its
// employee, and the listing shows whom each key acts for.
func TestDelegateKeyIsShownWithItsEmployee(t *testing.T) {
	e := newEnv(t)
	_, created := e.createKey(t, `{"name":"agent","scopes":["delegate","read","diagnose"],"employee_upn":"jdoe@example.com"}`)
	if created["employee_upn"] != "jdoe@example.com" {
		t.Fatalf("created: got %v, want employee_upn jdoe@example.com", created)
	}
	_, plain := e.createKey(t, `{"name":"bot"}`)
	if v, ok := plain["employee_upn"]; !ok || v != nil {
		t.Errorf("plain key: got employee_upn %v (present %v), want null", v, ok)
	}
	resp, list := e.do(t, call{method: "GET", path: "/api/v1/api-keys", basic: [2]string{adminUser, adminPass}})
	if resp.StatusCode != 200 {
		t.Fatalf("list: got %d", resp.StatusCode)
	}
	found := false
	for _, k := range list["api_keys"].([]any) {
		key := k.(map[string]any)
		if key["id"] == created["id"] {
			found = key["employee_upn"] == "jdoe@example.com"
		}
	}
	if !found {
		t.Errorf("list: got %v, want the delegate key with its employee", list)
	}
}

func TestStrictInput(t *testing.T) {
	e := newEnv(t)
	admin := [2]string{adminUser, adminPass}
	tests := []struct {
		name, body, contentType string
		status                  int
		field                   string
	}{
		{"wrong content type", `{"name":"x"}`, "text/plain", 415, ""},
		{"unknown field", `{"name":"x","colour":"blue"}`, "", 400, "colour"},
		{"wrong type", `{"name":"x","scopes":"read"}`, "", 400, "scopes"},
		{"unknown scope", `{"name":"x","scopes":["root"]}`, "", 400, "scopes"},
		{"no name", `{"scopes":["read"]}`, "", 400, "name"},
		{"control chars in name", `{"name":"a\u0000b"}`, "", 400, "name"},
		{"name of 101 letters", `{"name":"` + strings.Repeat("é", 101) + `"}`, "", 400, "name"},
		{"two values", `{"name":"x"}{"name":"y"}`, "", 400, ""},
		{"truncated", `{"name":"x"`, "", 400, ""},
		{"invalid utf-8", "{\"name\":\"\xff\xfe\"}", "", 400, ""},
		{"past expiry", `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, "", 400, "expires_at"},
		{"bad expires_in", `{"name":"x","expires_in":"soon"}`, "", 400, "expires_in"},
		{"too large", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, "", 413, ""},
		{"deep json", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), "", 400, ""},
		{"employee without delegate", `{"name":"x","scopes":["read"],"employee_upn":"jdoe@example.com"}`, "", 400, "employee_upn"},
		{"delegate admin", `{"name":"x","scopes":["delegate","admin"],"employee_upn":"jdoe@example.com"}`, "", 400, "scopes"},
		{"delegate alone", `{"name":"x","scopes":["delegate"],"employee_upn":"jdoe@example.com"}`, "", 400, "scopes"},
		{"delegate for no UPN", `{"name":"x","scopes":["delegate","read"],"employee_upn":"jdoe"}`, "", 400, "employee_upn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, call{method: "POST", path: "/api/v1/api-keys", body: tt.body, contentType: tt.contentType, basic: admin})
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %v, want %d problem JSON", resp.StatusCode, body, tt.status)
			}
			if tt.field != "" && body["field"] != tt.field {
				t.Errorf("field: got %v, want %q", body["field"], tt.field)
			}
		})
	}
}
