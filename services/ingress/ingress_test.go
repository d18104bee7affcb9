package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dexbridge/dexbridge/internal/logging"
)

func newTestHandler(checks ...Check) http.Handler {
	return NewHandler(Options{Log: logging.Discard(), Checks: checks})
}

func TestReadinessReportsEachCheck(t *testing.T) {
	h := newTestHandler(
		Check{Name: "nats", Fn: func(context.Context) error { return nil }},
		Check{Name: "postgres", Fn: func(context.Context) error { return errors.New("connection refused password=x") }},
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(rec.Body).Decode(&body)
	if body.Checks["nats"] != "ok" || body.Checks["postgres"] != "unavailable" {
		t.Errorf("checks: got %v", body.Checks)
	}
}

func TestRoutingErrorsAreProblems(t *testing.T) {
	h := newTestHandler()
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/nope", 404, "not_found"},
		{http.MethodDelete, "/api/v1/topics", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		var p map[string]any
		_ = json.NewDecoder(rec.Body).Decode(&p)
		if rec.Code != tt.status || p["code"] != tt.code || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: got %d %v (%s), want %d %s as problem JSON", tt.method, tt.path, rec.Code, p["code"], rec.Header().Get("Content-Type"), tt.status, tt.code)
		}
		if rec.Header().Get(HeaderRequestID) == "" {
			t.Errorf("%s %s: no request id", tt.method, tt.path)
		}
	}
}

func TestRequestIDIsAdoptedOnlyWhenSafe(t *testing.T) {
	h := newTestHandler()
	for in, adopt := range map[string]bool{"abc-123": true, "evil\nheader": false, "": false, string(make([]byte, 200)): false} {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set(HeaderRequestID, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(HeaderRequestID)
		if (got == in) != adopt || got == "" {
			t.Errorf("X-Request-Id %q: echoed %q, adopt=%v", in, got, adopt)
		}
	}
}

func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		listen       string
		tls, allowed bool
		wantErr      bool
	}{
		{"127.0.0.1:8090", false, false, false},
		{"[::1]:8090", false, false, false},
		{"localhost:8090", false, false, false},
		{"0.0.0.0:8090", false, false, true},
		{"0.0.0.0:8090", true, false, false},
		{"10.0.0.5:8090", false, true, false},
	}
	for _, tt := range tests {
		if err := checkPlainHTTP(tt.listen, tt.tls, tt.allowed); (err != nil) != tt.wantErr {
			t.Errorf("%s tls=%v allowed=%v: got %v, want error %v", tt.listen, tt.tls, tt.allowed, err, tt.wantErr)
		}
	}
}

func TestServesTheAPIDocuments(t *testing.T) {
	h := newTestHandler()
	for path, key := range map[string]string{"/openapi.json": "openapi", "/openapi-v2.json": "swagger"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var doc map[string]any
		if err := json.NewDecoder(rec.Body).Decode(&doc); err != nil || rec.Code != 200 {
			t.Fatalf("%s: got %d, %v", path, rec.Code, err)
		}
		if doc[key] == nil || doc["paths"] == nil {
			t.Errorf("%s: no %q version or paths", path, key)
		}
	}
}
