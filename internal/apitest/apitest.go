// Package apitest checks, in tests, that every response of the REST API matches the
// OpenAPI document (schemas/openapi.yaml): its status is documented for the route,
// and its headers and body match. Tests route their ingress through Handler, so the
// document cannot drift from the code.
package apitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/dexbridge/dexbridge/schemas"
)

// Checker validates exchanges against the document.
type Checker struct {
	router routers.Router
}

// New loads the document.
func New(t testing.TB) *Checker {
	t.Helper()
	doc, err := schemas.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil // match any host: tests listen on random ports
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &Checker{router: r}
}

// Handler serves through h and fails t when a response does not match the document.
// Streaming responses (server-sent events) are checked for status and headers only.
func (c *Checker) Handler(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		c.Check(t, r, rec.Code, rec.Header(), rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Check validates one response to r.
func (c *Checker) Check(t testing.TB, r *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	// Match on a copy without the body the handler has consumed.
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(nil))
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return // an unknown route or method, answered as such
		}
		t.Errorf("openapi: %s %s answered %d but is not in the document: %v", r.Method, r.URL.Path, status, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s %s answered %d, which does not match the document: %v\nbody: %.500s", r.Method, r.URL.Path, status, err, body)
	}
}
