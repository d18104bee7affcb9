package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// call is one request to the REST API, which a tool call becomes.
type call struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any // encoded as JSON when not nil
	header http.Header
}

// answer is the REST API's response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// passHeaders are the headers of the MCP request a tool call's REST request carries:
// the API key and the employee a delegate key acts for (so the key's scopes, delegate
// binding and rate limit apply) and the request id (so the logs tie the two together).
var passHeaders = []string{"X-API-Key", "Authorization", "Dexbridge-On-Behalf-Of", "X-Request-Id"}

// maxAnswer caps what a REST answer may hold in memory; no tool's answer comes near.
const maxAnswer = 8 << 20

// do runs c through the REST handler in process.
func do(ctx context.Context, rest http.Handler, from http.Header, c call) (answer, error) {
	var body bytes.Buffer
	if c.body != nil {
		if err := json.NewEncoder(&body).Encode(c.body); err != nil {
			return answer{}, problem.Wrap(problem.Internal, err, "an internal error occurred")
		}
	}
	target := c.path
	if len(c.query) > 0 {
		target += "?" + c.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, target, &body)
	if err != nil {
		return answer{}, problem.Wrap(problem.Internal, err, "an internal error occurred")
	}
	req.RemoteAddr = "mcp"
	req.RequestURI = target
	for _, name := range passHeaders {
		for _, v := range from.Values(name) {
			req.Header.Add(name, v)
		}
	}
	if id := requestid.From(ctx); id != "" && req.Header.Get("X-Request-Id") == "" {
		// The MCP request's id, which its answer carries: one id in the logs for both.
		req.Header.Set("X-Request-Id", id)
	}
	for name, vs := range c.header {
		req.Header[name] = vs
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	rec := &recorder{header: http.Header{}}
	rest.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.overflow {
		return answer{}, problem.New(problem.Internal, "the answer is larger than %d bytes", maxAnswer)
	}
	return answer{status: rec.status, header: rec.header, body: rec.buf.Bytes()}, nil
}

// failure is the problem document of a non-2xx answer (ok false); an answer that
// is not a problem document (a redirect, say) is reported by its status alone.
func (a answer) failure() (problem.Document, bool) {
	if a.status >= 200 && a.status < 300 {
		return problem.Document{}, true
	}
	var doc problem.Document
	if mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type")); mt == problem.ContentType && json.Unmarshal(a.body, &doc) == nil && doc.Code.Valid() {
		return doc, false
	}
	code := problem.Internal
	codes := problem.Codes()
	slices.Sort(codes)
	for _, c := range codes {
		if c.Status() == a.status {
			code = c
			break
		}
	}
	return problem.New(code, "the request was answered HTTP %d", a.status).Doc(), false
}

// recorder is the ResponseWriter a tool's REST request writes to.
type recorder struct {
	header   http.Header
	status   int
	buf      bytes.Buffer
	overflow bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.buf.Len()+len(b) > maxAnswer {
		r.overflow = true
		return 0, fmt.Errorf("answer too large")
	}
	return r.buf.Write(b)
}

// segment escapes a path parameter. One that would change the path's shape (empty,
// a dot segment, a slash) is refused here; the REST handler checks everything else.
func segment(field, v string) (string, error) {
	switch {
	case strings.TrimSpace(v) == "":
		return "", problem.InvalidField(field, "%s is required", field)
	case v == "." || v == ".." || strings.ContainsAny(v, `/\`):
		return "", problem.InvalidField(field, "%s is an id, not a path", field)
	}
	return url.PathEscape(v), nil
}
