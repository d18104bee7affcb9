package ingress_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// mcpPost sends one JSON-RPC body to /mcp and returns the status and the body.
func mcpPost(t *testing.T, url, key, body string, header ...string) (int, string) {
	t.Helper()
	status, _, raw := mcpPostHeader(t, url, key, body, header...)
	return status, raw
}

// mcpPostHeader is mcpPost with the answer's headers.
func mcpPostHeader(t *testing.T, url, key, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%.60s: %v", body, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// TestMCPDoorAndHostileInput drives /mcp on the ingress with real keys and NATS (the
// topics worker is a stand-in): every malformed, oversized or unknown request gets a
// clean HTTP or JSON-RPC error, and a tool call is refused by the key's own rate
// limit, as its REST request would be.
// mcpIngress serves the ingress with real keys and NATS, a stand-in topics worker
// answering the topic list.
func mcpIngress(t testing.TB) (string, *auth.Keys) {
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	srv, err := natsrpc.NewServer(nc, "fake-topics", "1.0.0", "test", 4, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	err = natsrpc.Endpoint(srv, "topics_list", subjects.Of(events.TopicsList), events.TypeTopicsListRequest,
		func(_ context.Context, _ events.TopicsListRequest) (events.TopicsListReply, error) {
			return events.TopicsListReply{Header: events.NewHeader(events.TypeTopicsListReply),
				Topics: []events.Topic{{ID: "outlook", Title: "Outlook", Platforms: []string{"Windows"}}}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeys(db)
	web := httptest.NewServer(ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, 5*time.Second), Keys: keys, Credentials: auth.NewCredentials(nil),
		Limiters: ratelimit.NewShared(db), Subjects: subjects, Log: logging.Discard(),
	}))
	t.Cleanup(web.Close)
	return web.URL, keys
}

// BenchmarkToolCallAgainstREST: what the MCP door adds to a REST request (the topic
// list, answered by a stand-in worker over NATS).
func BenchmarkToolCallAgainstREST(b *testing.B) {
	url, keys := mcpIngress(b)
	key, _, err := keys.Create(context.Background(), auth.NewKey{Name: "bench", Scopes: []string{"read"}, CreatedBy: "test"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rest", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/topics", nil)
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%v %v", resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_topics","arguments":{}}}`
	b.Run("mcp", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", "2025-06-18")
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%v %v", resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func TestMCPDoorAndHostileInput(t *testing.T) {
	base, keys := mcpIngress(t)
	rate := 0.001 // one request, then none for 1000 s
	slow, _, err := keys.Create(context.Background(), auth.NewKey{Name: "slow", Scopes: []string{"read"}, CreatedBy: "test", RateLimitPerSecond: &rate})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := keys.Create(context.Background(), auth.NewKey{Name: "bot", Scopes: []string{"read", "diagnose"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}

	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	call := func(name, args string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
	}
	tests := []struct {
		name, key, body string
		header          []string
		status          int
		want            string
	}{
		{"no key", "", list, nil, 401, `"code":"unauthorized"`},
		{"wrong key", "dxb_nope", list, nil, 401, `"code":"unauthorized"`},
		{"tools/list", key, list, nil, 200, `"name":"remediate"`},
		{"a wrong session id is ignored: the server is stateless", key, list, []string{"Mcp-Session-Id", "forged"}, 200, `"name":"diagnose"`},
		{"malformed JSON", key, `{"jsonrpc":"2.0","id":1,"method":`, nil, 400, ""},
		{"not JSON-RPC", key, `[1,2,3]`, nil, 400, ""},
		{"unknown method", key, `{"jsonrpc":"2.0","id":1,"method":"no/such"}`, nil, 400, `unsupported`},
		{"unknown tool", key, call("no_such_tool", `{}`), nil, 200, `"error"`},
		{"oversized", key, call("list_topics", `{"x":"`+strings.Repeat("a", 2<<20)+`"}`), nil, 413, ""},
		{"arguments of the wrong type", key, call("diagnose", `["outlook"]`), nil, 200, `invalid_request: the arguments must be a JSON object`},
		{"an argument of the wrong type", key, call("diagnose", `{"topic":"outlook","device":42}`), nil, 200, `(argument device)`},
		{"a scope the key lacks", key, call("remediate", `{"topic":"outlook","remediation":"x","device":"PC-1","reason":"r"}`), nil, 200, `forbidden: this API key lacks the \"remediate\" scope`},
		{"a tool call through the REST API", key, call("list_topics", `{}`), nil, 200, `"structuredContent":{"topics":[{"id":"outlook"`},
		{"the key's rate limit: first call", slow, call("list_topics", `{}`), nil, 200, `"structuredContent"`},
		{"the key's rate limit: second call", slow, call("list_topics", `{}`), nil, 200, `rate_limited: `},
	}
	for _, tt := range tests {
		status, body := mcpPost(t, base, tt.key, tt.body, tt.header...)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: got %d %.300s, want %d with %s", tt.name, status, body, tt.status, tt.want)
		}
		if status == 200 {
			var msg struct {
				JSONRPC string `json:"jsonrpc"`
			}
			if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.JSONRPC != "2.0" {
				t.Errorf("%s: got %.200s, want one JSON-RPC message", tt.name, body)
			}
		}
		if strings.Contains(body, "goroutine") || strings.Contains(body, "dxb_") {
			t.Errorf("%s: the answer leaks a stack or a key: %.300s", tt.name, body)
		}
	}
	// A tool error carries the MCP request's id: the logs of both requests share it.
	_, hdr, body := mcpPostHeader(t, base, key, call("remediate", `{"topic":"outlook","remediation":"x","device":"PC-1","reason":"r"}`))
	if id := hdr.Get("X-Request-Id"); id == "" || !strings.Contains(body, `"request_id":"`+id+`"`) {
		t.Errorf("tool error: got %.300s, want the request id %q in its problem", body, id)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(method, base+"/mcp", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /mcp: got %d, want 405", method, resp.StatusCode)
		}
	}
}
