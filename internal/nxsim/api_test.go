package nxsim

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func tokenStatus(t *testing.T, base, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/default/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestToken(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	in := startTest(t, func(c *Config) { c.Clock = clock.Now; c.TokenTTL = 60 * time.Second })
	grant := url.Values{"grant_type": {"client_credentials"}}
	status, body := tokenStatus(t, in.URL(), "eu-client", "eu-client-secret", grant)
	if status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != 60.0 || body["scope"] != "service:integration" || body["access_token"] == "" {
		t.Fatalf("token: got %d %v", status, body)
	}
	tests := []struct {
		name, id, secret string
		form             url.Values
		want             int
		wantErr          string
	}{
		{"bad secret", "eu-client", "wrong", grant, 401, "invalid_client"},
		{"unknown client", "nobody", "x", grant, 401, "invalid_client"},
		{"other tenant's client", "us-client", "us-client-secret", grant, 401, "invalid_client"},
		{"wrong grant", "eu-client", "eu-client-secret", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		status, body := tokenStatus(t, in.URL(), tt.id, tt.secret, tt.form)
		if status != tt.want || body["error"] != tt.wantErr || body["error_description"] == "" {
			t.Errorf("%s: got %d %v, want %d %s", tt.name, status, body, tt.want, tt.wantErr)
		}
	}
	tok := body["access_token"].(string)
	list := func() int {
		s, _, _ := call(t, http.MethodGet, in.URL()+"/api/v1/act/remote-action", tok, nil)
		return s
	}
	if got := list(); got != 200 {
		t.Fatalf("fresh token: got %d", got)
	}
	clock.Add(59 * time.Second)
	if got := list(); got != 200 {
		t.Errorf("token at 59 s: got %d, want 200", got)
	}
	clock.Add(time.Second)
	if got := list(); got != 401 {
		t.Errorf("token at 60 s: got %d, want 401", got)
	}
	tok = token(t, in.URL(), "eu-client", "eu-client-secret")
	call(t, http.MethodPost, in.URL()+"/_nxsim/tokens/expire", "", nil)
	if s, _, _ := call(t, http.MethodGet, in.URL()+"/api/v1/act/remote-action", tok, nil); s != 401 {
		t.Errorf("after /_nxsim/tokens/expire: got %d, want 401", s)
	}
}

func TestPermissions(t *testing.T) {
	in := startTest(t, nil)
	nqlBody := map[string]any{"queryId": "#get_device_basic_infos", "parameters": map[string]string{"username": "jdoe"}}
	tests := []struct {
		client, method, path string
		body                 any
		want                 int
	}{
		{"eu-nql", "POST", "/api/v2/nql/execute", nqlBody, 200},
		{"eu-nql", "POST", "/api/v1/nql/export", nqlBody, 200},
		{"eu-nql", "GET", "/api/v1/act/remote-action", nil, 403},
		{"eu-nql", "POST", "/api/v1/act/execute", map[string]any{"remoteActionId": "#disk_cleanup", "devices": []string{"x"}}, 403},
		{"eu-ra", "POST", "/api/v2/nql/execute", nqlBody, 403},
		{"eu-ra", "POST", "/api/v1/nql/export", nqlBody, 403},
		{"eu-ra", "GET", "/api/v1/nql/status/x", nil, 403},
		{"eu-ra", "GET", "/api/v1/act/remote-action", nil, 200},
	}
	for _, tt := range tests {
		tok := token(t, in.URL(), tt.client, tt.client+"-secret")
		if got, _, b := call(t, tt.method, in.URL()+tt.path, tok, tt.body); got != tt.want {
			t.Errorf("%s %s with %s: got %d, want %d: %s", tt.method, tt.path, tt.client, got, tt.want, b)
		}
	}
}

func TestExecuteFormats(t *testing.T) {
	// A clock that stands still: the two answers compared below are of one instant,
	// however far apart (a second boundary between them) the calls are made.
	clock := &fakeClock{t: time.Now()}
	in := startTest(t, func(c *Config) {
		c.Clock = clock.Now
		c.FleetSize = 1500
		c.Queries = map[string]string{"#all_devices": "devices | list name, last_seen | sort name asc"}
	})
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	body := map[string]any{"queryId": "#get_device_basic_infos", "parameters": map[string]string{"username": "jdoe"}}

	_, _, local := call(t, http.MethodPost, in.URL()+"/api/v1/nql/execute", tok, body)
	_, _, utc := call(t, http.MethodPost, in.URL()+"/api/v1/nql/execute", tok, body, "x-utc-times", "true")
	var lv, uv struct {
		Headers []string `json:"headers"`
		Data    [][]any  `json:"data"`
	}
	if json.Unmarshal(local, &lv) != nil || json.Unmarshal(utc, &uv) != nil || len(lv.Data) != 2 {
		t.Fatalf("v1: %s", local)
	}
	zurich, _ := time.LoadLocation("Europe/Zurich")
	lt, err1 := time.ParseInLocation(nqlTimeLayout, lv.Data[0][6].(string), zurich)
	ut, err2 := time.ParseInLocation(nqlTimeLayout, uv.Data[0][6].(string), time.UTC)
	if err1 != nil || err2 != nil || !lt.Equal(ut) || lv.Data[0][6] == uv.Data[0][6] {
		t.Errorf("last_seen: local %v, UTC %v; want the same instant in two zones", lv.Data[0][6], uv.Data[0][6])
	}
	if lv.Headers[0] != "device.collector.uid" {
		t.Errorf("headers: got %v", lv.Headers)
	}

	status, hdr, b := call(t, http.MethodPost, in.URL()+"/api/v2/nql/execute", tok, body, "Accept", "text/csv")
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if status != 200 || err != nil || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || len(recs) != 3 || recs[0][1] != "device.name" || recs[1][1] != "PC-OUTLOOK-OFFLINE" {
		t.Errorf("csv: got %d %q", status, b)
	}

	var all struct {
		Rows int              `json:"rows"`
		Data []map[string]any `json:"data"`
	}
	_, _, b = call(t, http.MethodPost, in.URL()+"/api/v2/nql/execute", tok, map[string]any{"queryId": "#all_devices"})
	if err := json.Unmarshal(b, &all); err != nil || all.Rows != 1000 || len(all.Data) != 1000 {
		t.Errorf("row cap: got rows %d, %d data rows; want 1000", all.Rows, len(all.Data))
	}
	// v2 objects keep the header order.
	if i, j := bytes.Index(b, []byte(`"device.name"`)), bytes.Index(b, []byte(`"device.last_seen"`)); i < 0 || j < i {
		t.Errorf("v2 key order: device.name at %d, device.last_seen at %d", i, j)
	}
}

func TestExport(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	in := startTest(t, func(c *Config) {
		c.Clock = clock.Now
		c.FleetSize = 3000
		// At least a second in SUBMITTED and in IN_PROGRESS, so that the polls below
		// normally see both; what is asserted is their order, which no delay changes.
		c.ExportDelay = time.Second
		c.Queries = map[string]string{"#all_devices": "devices | list name, collector.uid | sort name asc"}
	})
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	for _, comp := range []string{"NONE", "GZIP", "ZSTD"} {
		t.Run(comp, func(t *testing.T) {
			id := startExport(t, in.URL(), tok, "#all_devices", nil, comp)
			st, code, seen := waitExport(t, in.URL(), tok, id)
			if code != 200 || st["status"] != "COMPLETED" || !inOrder(seen, "SUBMITTED", "IN_PROGRESS", "COMPLETED") {
				t.Fatalf("status: got %d %v, saw %v; want SUBMITTED, IN_PROGRESS, COMPLETED in that order", code, st, seen)
			}
			fileURL := st["resultsFileUrl"].(string)
			resp, err := http.Get(fileURL) // no bearer token
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("results file: got %d %s", resp.StatusCode, raw)
			}
			var r io.Reader = bytes.NewReader(raw)
			switch comp {
			case "GZIP":
				gz, err := gzip.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				r = gz
			case "ZSTD":
				zr, err := zstd.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			}
			recs, err := csv.NewReader(r).ReadAll()
			if err != nil || len(recs) != 3001 || recs[0][0] != "device.name" || recs[0][1] != "device.collector.uid" {
				t.Fatalf("results: %d records, err %v, header %v; want header and 3000 rows", len(recs), err, recs[0])
			}
			bad := strings.Replace(fileURL, "signature=", "signature=0", 1)
			if resp, err := http.Get(bad); err != nil || resp.StatusCode != 403 {
				t.Errorf("tampered URL: got %v %v, want 403", resp.StatusCode, err)
			}
		})
	}
	t.Run("url expires after 15 minutes", func(t *testing.T) {
		id := startExport(t, in.URL(), tok, "#all_devices", nil)
		st, _, _ := waitExport(t, in.URL(), tok, id)
		clock.Add(15 * time.Minute)
		resp, err := http.Get(st["resultsFileUrl"].(string))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("expired URL: got %d, want 403", resp.StatusCode)
		}
	})
	t.Run("error", func(t *testing.T) {
		tok := token(t, in.URL(), "eu-client", "eu-client-secret")
		call(t, http.MethodPut, in.URL()+"/_nxsim/exports/settings", "", ExportSettings{DelayMS: 1, Fail: true})
		t.Cleanup(func() { call(t, http.MethodPut, in.URL()+"/_nxsim/exports/settings", "", ExportSettings{DelayMS: 1}) })
		st, _, _ := waitExport(t, in.URL(), tok, startExport(t, in.URL(), tok, "#all_devices", nil))
		if st["status"] != "ERROR" || st["errorDescription"] == "" {
			t.Errorf("failed export: got %v", st)
		}
	})
}

func TestMultiTenantIsolation(t *testing.T) {
	in := startTest(t, nil)
	eu, us := in.TenantURL("eu"), in.TenantURL("us")
	euTok := token(t, eu, "eu-client", "eu-client-secret")
	usTok := token(t, us, "us-client", "us-client-secret")
	rootTok := token(t, in.URL(), "eu-client", "eu-client-secret")
	body := map[string]any{"queryId": "#diagnose_onedrive_issues", "parameters": map[string]string{"device_name": "PC-HEALTHY"}}
	if s, _, _ := call(t, http.MethodPost, us+"/api/v2/nql/execute", euTok, body); s != 401 {
		t.Errorf("eu token on us: got %d, want 401", s)
	}
	if rows := execV2(t, us, usTok, "#diagnose_onedrive_issues", map[string]string{"device_name": "PC-HEALTHY"}); len(rows) != 0 {
		t.Errorf("PC-HEALTHY on us: got %v, want none", rows)
	}
	if rows := execV2(t, eu, rootTok, "#diagnose_onedrive_issues", map[string]string{"device_name": "PC-HEALTHY"}); len(rows) != 1 {
		t.Errorf("root token on /tenants/eu: got %d rows, want 1", len(rows))
	}
	if rows := execV2(t, us, usTok, "#diagnose_onedrive_issues", map[string]string{"device_name": "US-000003"}); len(rows) != 1 {
		t.Errorf("US-000003 on us: got %d rows, want 1", len(rows))
	}
	var euC, usC Counters
	_, _, b := call(t, http.MethodGet, eu+"/_nxsim/counters", "", nil)
	_ = json.Unmarshal(b, &euC)
	_, _, b = call(t, http.MethodGet, us+"/_nxsim/counters", "", nil)
	_ = json.Unmarshal(b, &usC)
	if euC.Endpoints["POST /api/v2/nql/execute"] != 1 || usC.Endpoints["POST /api/v2/nql/execute"] != 3 {
		t.Errorf("execute counters: eu %d, us %d; want 1 and 3", euC.Endpoints["POST /api/v2/nql/execute"], usC.Endpoints["POST /api/v2/nql/execute"])
	}
}

func TestCountersAndFaults(t *testing.T) {
	in := startTest(t, nil)
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	call(t, http.MethodPost, in.URL()+"/_nxsim/counters/reset", "", nil)
	execV2(t, in.URL(), tok, "#get_device_basic_infos", map[string]string{"username": "jdoe"})
	execV2(t, in.URL(), tok, "#get_device_basic_infos", map[string]string{"username": "bwayne"})
	setFaults(t, in, Faults{RateLimitRate: 1, RetryAfterSeconds: 7, Groups: []string{"nql"}})
	status, hdr, _ := call(t, http.MethodPost, in.URL()+"/api/v2/nql/execute", tok, map[string]any{"queryId": "#get_device_basic_infos"})
	if status != 429 || hdr.Get("Retry-After") != "7" {
		t.Errorf("429: got %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	if s, _, _ := call(t, http.MethodGet, in.URL()+"/api/v1/act/remote-action", tok, nil); s != 200 {
		t.Errorf("act while nql is limited: got %d, want 200", s)
	}
	var c Counters
	_, _, b := call(t, http.MethodGet, in.URL()+"/_nxsim/counters", "", nil)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Endpoints["POST /api/v2/nql/execute"] != 3 || c.Queries["#get_device_basic_infos"] != 2 ||
		c.Responses["POST /api/v2/nql/execute"]["429"] != 1 || c.Responses["POST /api/v2/nql/execute"]["200"] != 2 {
		t.Errorf("counters: got %s", b)
	}
	setFaults(t, in, Faults{Latency: map[string]Latency{"act": {FixedMS: 150}}})
	start := time.Now()
	call(t, http.MethodGet, in.URL()+"/api/v1/act/remote-action", tok, nil)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("latency: call took %v, want at least 150ms", d)
	}
	setFaults(t, in, Faults{Down: "close"})
	req, _ := http.NewRequest(http.MethodGet, in.URL()+"/api/v1/act/remote-action", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("down=close: got status %d, want a connection error", resp.StatusCode)
	}
	setFaults(t, in, Faults{FailNext: 2, FailStatus: 503, Groups: []string{"act"}})
	var statuses []int
	for range 3 {
		s, _, _ := call(t, http.MethodGet, in.URL()+"/api/v1/act/remote-action", tok, nil)
		statuses = append(statuses, s)
	}
	if fmt.Sprint(statuses) != "[503 503 200]" {
		t.Errorf("fail_next 2: got %v, want [503 503 200]", statuses)
	}
	setFaults(t, in, Faults{})
	if s, _, b := call(t, http.MethodPut, in.URL()+"/_nxsim/faults", "", map[string]any{"error_rate": 2}); s != 400 {
		t.Errorf("bad faults: got %d %s, want 400", s, b)
	}
	call(t, http.MethodPost, in.URL()+"/_nxsim/counters/reset", "", nil)
	_, _, b = call(t, http.MethodGet, in.URL()+"/_nxsim/counters", "", nil)
	if err := json.Unmarshal(b, &c); err != nil || c.Total != 0 {
		t.Errorf("after reset: got %s", b)
	}
}

func TestFireAlertSendsWebhook(t *testing.T) {
	in := startTest(t, func(c *Config) {
		c.Queries = map[string]string{"#open_alerts": "alert.alerts past 1h | where alert.status == \"open\" and device.name == \"PC-OUTLOOK-PLUGIN\" | list alert.monitor.name, device.name, user.name"}
	})
	type received struct {
		method, path, auth string
		body               []byte
	}
	got := make(chan received, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.URL.Path, r.Header.Get("Authorization"), b}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":true}`))
	}))
	t.Cleanup(recv.Close)
	tests := []struct {
		name     string
		auth     *WebhookAuth
		method   string
		wantAuth string
	}{
		{"basic", &WebhookAuth{Type: "basic", Username: "nx", Password: "pw"}, "", "Basic bng6cHc="},
		{"bearer", &WebhookAuth{Type: "bearer", Token: "tok"}, "PUT", "Bearer tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := FireAlert{Monitor: "Outlook crashes", Device: "PC-OUTLOOK-PLUGIN", Context: `plugin "Grammarly"`,
				Webhook: &Webhook{URL: recv.URL, Method: tt.method, Path: "/api/v1/webhooks/nexthink", Auth: tt.auth,
					Payload: `{"monitor":"{{alert.monitor.name}}","device":"{{device.name}}","user":"{{user.name}}","status":"{{alert.status}}","at":"{{trigger_time}}","context":"{{alert.context}}"}`}}
			status, _, b := call(t, http.MethodPost, in.URL()+"/_nxsim/alerts", "", req)
			var out struct {
				Webhook WebhookResult `json:"webhook"`
			}
			if status != 200 || json.Unmarshal(b, &out) != nil || out.Webhook.Status != 202 {
				t.Fatalf("fire: got %d %s", status, b)
			}
			r := <-got
			var payload map[string]string
			if err := json.Unmarshal(r.body, &payload); err != nil {
				t.Fatalf("payload is not JSON: %s", r.body)
			}
			wantMethod := tt.method
			if wantMethod == "" {
				wantMethod = "POST"
			}
			if r.method != wantMethod || r.path != "/api/v1/webhooks/nexthink" || r.auth != tt.wantAuth {
				t.Errorf("request: got %s %s %q", r.method, r.path, r.auth)
			}
			if payload["monitor"] != "Outlook crashes" || payload["device"] != "PC-OUTLOOK-PLUGIN" || payload["user"] != "hjordan" ||
				payload["status"] != "open" || payload["context"] != `plugin "Grammarly"` || payload["at"] == "" {
				t.Errorf("payload: got %v", payload)
			}
		})
	}
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	rows := execV2(t, in.URL(), tok, "#open_alerts", nil)
	if len(rows) != 2 || rows[0]["device.name"] != "PC-OUTLOOK-PLUGIN" {
		t.Errorf("alert rows in the last hour: got %v, want the 2 fired alerts", rows)
	}
	bad := FireAlert{Monitor: "Slow PC", Webhook: &Webhook{URL: recv.URL, Payload: "{{nope}}"}}
	if s, _, b := call(t, http.MethodPost, in.URL()+"/_nxsim/alerts", "", bad); s != 400 || !strings.Contains(string(b), "nope") {
		t.Errorf("unknown placeholder: got %d %s", s, b)
	}
}

func TestSavedQueries(t *testing.T) {
	in := startTest(t, nil)
	status, _, b := call(t, http.MethodPost, in.URL()+"/_nxsim/queries", "", addQuery{ID: "#count_devices", NQL: "devices\n| summarize n = count()"})
	if status != 201 {
		t.Fatalf("add query: got %d %s", status, b)
	}
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	if rows := execV2(t, in.URL(), tok, "#count_devices", nil); len(rows) != 1 || rows[0]["n"] != 200.0 {
		t.Errorf("#count_devices: got %v, want n = 200", rows)
	}
	status, _, b = call(t, http.MethodPost, in.URL()+"/_nxsim/queries", "", addQuery{ID: "#broken", NQL: "devices\n| where ==="})
	var ce controlError
	if status != 400 || json.Unmarshal(b, &ce) != nil || ce.Line != 2 || ce.Column == 0 {
		t.Errorf("bad query: got %d %s, want 400 with line 2", status, b)
	}
}

func TestLoadQueriesReportsPosition(t *testing.T) {
	dir := t.TempDir()
	topic := "id: broken\nqueries:\n  - id: \"#good_one\"\n    nql: devices | list name\n  - id: \"#bad_one\"\n    nql: |\n      devices\n      | frobnicate name\n      | list name\n" +
		"title: Broken\ndescription: A topic with a bad query.\nplatforms: [Windows]\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(topic), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewServer(Config{TopicsDir: dir, QueriesFile: "../../config/queries.yaml", FleetSize: 10})
	if err == nil {
		t.Fatal("NewServer: got nil error for a bad query")
	}
	want := filepath.Join(dir, "broken.yaml") + ":8:9:"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "#bad_one") {
		t.Errorf("error: got %q, want it to name %s and #bad_one", err, want)
	}
}

// inOrder reports whether seen is states, or states with some left out, in order,
// ending with the last state.
func inOrder(seen []string, states ...string) bool {
	if len(seen) == 0 || seen[len(seen)-1] != states[len(states)-1] {
		return false
	}
	k := 0
	for _, s := range seen {
		for k < len(states) && states[k] != s {
			k++
		}
		if k == len(states) {
			return false
		}
		k++
	}
	return true
}
