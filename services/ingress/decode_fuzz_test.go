package ingress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// FuzzDecodeJSON: whatever the body and content type, decodeJSON returns nil or a
// client error (never internal, never a panic), and what it accepts is one value.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"bot","scopes":["read"]}`, `{"name":"x","expires_in":"30d"}`, `{}`, `[]`, `null`,
		`{"name":1}`, `{"name":"a"}{"name":"b"}`, "{\"name\":\"\xff\"}", `{"colour":"blue"}`, ``, `   `,
		`{"rate_limit_per_second":1e400}`, `{"expires_at":"not a date"}`,
	} {
		f.Add(seed, "application/json")
	}
	f.Add(`{"name":"x"}`, "text/plain")
	f.Add(`{"name":"x"}`, "application/merge-patch+json; charset=utf-8")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/api-keys", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		var into createKeyRequest
		err := decodeJSON(httptest.NewRecorder(), req, &into, false)
		if err == nil {
			return
		}
		var p *problem.Error
		if !errors.As(err, &p) {
			t.Fatalf("unclassified error %v for %q", err, body)
		}
		if s := p.Code.Status(); s < 400 || s >= 500 {
			t.Fatalf("got %s (%d) for %q, want a client error", p.Code, s, body)
		}
	})
}

// FuzzExecutionQuery: whatever the query string of the execution list, executionQuery
// accepts it or answers 400 naming a parameter, and never panics.
func FuzzExecutionQuery(f *testing.F) {
	for _, seed := range []string{
		"", "device=PC-STARTUP&status=pending,waiting_for_device&since=2026-05-04T09:00:00Z&limit=20",
		"status=pending&status=failure", "status=", "status=pending,", "since=yesterday", "limit=0", "limit=201",
		"limit=1&limit=2", "cursor=", "cursor=%21%21", "device=", "device=a%2Ab", "colour=blue", "remote_action=repair",
		"device=1f5209c4-0166-4765-b4fa-29984d51deb1&remote_action=%23repair_onedrive", "%zz",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, err = executionQuery(q)
		if err == nil {
			return
		}
		var p *problem.Error
		if !errors.As(err, &p) || p.Code != problem.Invalid || p.Field == "" {
			t.Fatalf("query %q: got %v, want 400 naming a parameter", raw, err)
		}
	})
}
