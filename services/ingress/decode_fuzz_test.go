package ingress

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
