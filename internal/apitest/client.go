package apitest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Key creates an API key with scopes in db and returns its secret.
func Key(t testing.TB, db *store.DB, name string, scopes ...string) string {
	t.Helper()
	secret, _, err := auth.NewKeys(db).Create(context.Background(), auth.NewKey{Name: name, Scopes: scopes, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// Do sends a request with key (when not empty) through h and decodes the JSON answer
// into out (when not nil).
func Do(t testing.TB, h http.Handler, method, path, key, body string, out any) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp
}
