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
// Streaming responses (server-sent events, NDJSON and CSV exports) pass through as
// they are written, checked for status and headers only.
func (c *Checker) Handler(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			h.ServeHTTP(w, r)
			return
		}
		cw := &checkWriter{w: w, check: func(status int, header http.Header, body []byte, streaming bool) {
			c.check(t, r, status, header, body, streaming)
		}}
		h.ServeHTTP(cw, r)
		cw.finish()
	})
}

// checkWriter holds a response until it is complete and then checks it, or, once
// its headers say it streams, checks them and passes the body through.
type checkWriter struct {
	w         http.ResponseWriter
	check     func(status int, header http.Header, body []byte, streaming bool)
	status    int
	body      bytes.Buffer
	streaming bool
}

func (cw *checkWriter) Header() http.Header { return cw.w.Header() }

func (cw *checkWriter) WriteHeader(code int) {
	if cw.status != 0 {
		return
	}
	cw.status = code
	if streamingType(cw.w.Header().Get("Content-Type")) {
		cw.streaming = true
		cw.check(code, cw.w.Header(), nil, true)
		cw.w.WriteHeader(code)
	}
}

func (cw *checkWriter) Write(b []byte) (int, error) {
	cw.WriteHeader(http.StatusOK)
	if cw.streaming {
		return cw.w.Write(b)
	}
	return cw.body.Write(b)
}

// FlushError flushes a streaming response; a held one is flushed when complete.
func (cw *checkWriter) FlushError() error {
	if !cw.streaming {
		return nil
	}
	return http.NewResponseController(cw.w).Flush()
}

// Unwrap lets http.ResponseController set the connection's deadlines.
func (cw *checkWriter) Unwrap() http.ResponseWriter { return cw.w }

func (cw *checkWriter) finish() {
	if cw.streaming {
		return
	}
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	cw.check(cw.status, cw.w.Header(), cw.body.Bytes(), false)
	cw.w.WriteHeader(cw.status)
	_, _ = cw.w.Write(cw.body.Bytes())
}

func streamingType(ct string) bool {
	for _, s := range []string{"text/event-stream", "application/x-ndjson", "text/csv"} {
		if strings.HasPrefix(ct, s) {
			return true
		}
	}
	return false
}

// Check validates one response to r.
func (c *Checker) Check(t testing.TB, r *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	c.check(t, r, status, header, body, false)
}

func (c *Checker) check(t testing.TB, r *http.Request, status int, header http.Header, body []byte, headersOnly bool) {
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
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: headersOnly},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s %s answered %d, which does not match the document: %v\nbody: %.500s", r.Method, r.URL.Path, status, err, body)
	}
}
