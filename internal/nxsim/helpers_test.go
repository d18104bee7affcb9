package nxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// startTest starts nxsim on a free port with the repository's topics and queries,
// fast executions and a short export delay.
func startTest(t testing.TB, mod func(*Config)) *Instance {
	t.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", FleetSize: 200, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Logger:      discardLogger(),
		Executions:  ExecutionTiming{Pending: 20 * time.Millisecond, Running: 40 * time.Millisecond, Tick: 5 * time.Millisecond},
		ExportDelay: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	in, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return in
}

// token fetches an access token.
func token(t testing.TB, base, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/default/v1/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"service:integration"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("token: got status %d", resp.StatusCode)
	}
	return body.AccessToken
}

// call makes a request and returns the status, headers and body.
func call(t testing.TB, method, u, tok string, body any, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k := 0; k+1 < len(headers); k += 2 {
		req.Header.Set(headers[k], headers[k+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// execV2 runs a saved query with execute v2 and returns its data rows.
func execV2(t testing.TB, base, tok, id string, params map[string]string) []map[string]any {
	t.Helper()
	status, _, b := call(t, http.MethodPost, base+"/api/v2/nql/execute", tok, map[string]any{"queryId": id, "parameters": params})
	if status != http.StatusOK {
		t.Fatalf("execute %s: got status %d: %s", id, status, b)
	}
	var body struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("execute %s: %v", id, err)
	}
	return body.Data
}
