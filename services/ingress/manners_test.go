package ingress_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

const portal = "https://portal.example.com"

// mannersEnv is an ingress with a topics worker behind it, /metrics, a key with
// every scope and one allowed browser origin. Its handler is not wrapped in the
// OpenAPI checker: HEAD, OPTIONS and 406 are the HTTP's, not the document's.
type mannersEnv struct {
	opts    ingress.Options
	handler http.Handler
	key     string
	paths   []path
}

// path is a route's template made concrete, with every method the router has for it.
type path struct {
	template, url string
	methods       []string
	routeOf       map[string]string // the template that answers a method here
}

var pathVar = regexp.MustCompile(`\{[^}]+\}`)

func newMannersEnv(t *testing.T) *mannersEnv {
	t.Helper()
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	startTopics(t, nc, subjects, 4)
	keys := auth.NewKeys(db)
	key, _, err := keys.Create(context.Background(), auth.NewKey{Name: "manners", Scopes: []string{"read", "diagnose", "remediate", "admin"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e := &mannersEnv{key: key, opts: ingress.Options{
		RPC:         natsrpc.NewClient(nc, 5*time.Second),
		Keys:        keys,
		Credentials: auth.NewCredentials([]auth.Credential{{Who: "admin", User: adminUser, Password: adminPass}}),
		Limiters:    ratelimit.NewShared(db),
		Metrics:     metrics.New(),
		Subjects:    subjects,
		Log:         logging.Discard(),
		CORSOrigins: []string{portal},
	}}
	e.handler = ingress.NewHandler(e.opts)
	// Every route of the router, whatever it is: a new one cannot escape these tests.
	// A path's methods are those of every template that matches it.
	routes := ingress.Routes(e.opts)
	seen := map[string]bool{}
	for _, r := range routes {
		u := pathVar.ReplaceAllString(r.Template, "x1")
		if seen[u] {
			continue
		}
		seen[u] = true
		p := path{template: r.Template, url: u, routeOf: map[string]string{}}
		for _, other := range routes {
			parts := pathVar.Split(other.Template, -1)
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			re := regexp.MustCompile("^" + strings.Join(parts, "[^/]+") + "$")
			if !re.MatchString(u) {
				continue
			}
			for _, m := range other.Methods {
				if !slices.Contains(p.methods, m) {
					p.methods = append(p.methods, m)
					p.routeOf[m] = other.Template // the router takes the first route that matches
				}
			}
		}
		slices.Sort(p.methods)
		e.paths = append(e.paths, p)
	}
	if len(e.paths) < 20 {
		t.Fatalf("only %d paths found in the router", len(e.paths))
	}
	return e
}

type req struct {
	method, url, body, contentType string
	header                         map[string]string
	key                            bool
}

func (e *mannersEnv) serve(t *testing.T, h http.Handler, r req) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.url, body)
	hr.RemoteAddr = freshClient()
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.key {
		hr.Header.Set("X-API-Key", e.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr.WithContext(ctx))
	resp := rec.Result()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func code(raw []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.Code
}

// TestEveryGETRouteAnswersHEAD: HEAD is GET without the body, on every route that
// has GET, with a key that may call any of them.
func TestEveryGETRouteAnswersHEAD(t *testing.T) {
	e := newMannersEnv(t)
	n := 0
	for _, p := range e.paths {
		if !slices.Contains(p.methods, http.MethodGet) {
			continue
		}
		n++
		if !slices.Contains(p.methods, http.MethodHead) {
			t.Errorf("%s: GET without HEAD", p.template)
		}
		get, getBody := e.serve(t, e.handler, req{method: http.MethodGet, url: p.url, key: true})
		head, headBody := e.serve(t, e.handler, req{method: http.MethodHead, url: p.url, key: true})
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("%s: HEAD %d %q, GET %d %q (%.200s)", p.template, head.StatusCode, head.Header.Get("Content-Type"),
				get.StatusCode, get.Header.Get("Content-Type"), getBody)
		}
		if len(headBody) != 0 {
			t.Errorf("%s: HEAD sent a body: %.100s", p.template, headBody)
		}
	}
	if n < 10 {
		t.Fatalf("only %d GET routes", n)
	}
}

// TestWrongMethodNamesTheRightOnes: a method the path does not have is 405 with a
// problem and an Allow header listing exactly what the router has there; OPTIONS
// answers the same list.
func TestWrongMethodNamesTheRightOnes(t *testing.T) {
	e := newMannersEnv(t)
	for _, p := range e.paths {
		want := strings.Join(slices.Sorted(slices.Values(append(slices.Clone(p.methods), http.MethodOptions))), ", ")
		tried := 0
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if slices.Contains(p.methods, m) {
				continue
			}
			tried++
			resp, raw := e.serve(t, e.handler, req{method: m, url: p.url, key: true})
			if resp.StatusCode != 405 || code(raw) != "method_not_allowed" || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: got %d %s %q, want a 405 method_not_allowed problem", m, p.template, resp.StatusCode, code(raw), resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Allow"); got != want {
				t.Errorf("%s %s: Allow %q, want %q", m, p.template, got, want)
			}
		}
		if tried == 0 {
			t.Errorf("%s: every method allowed?", p.template)
		}
		resp, raw := e.serve(t, e.handler, req{method: http.MethodOptions, url: p.url})
		if resp.StatusCode != 204 || resp.Header.Get("Allow") != want || len(raw) != 0 {
			t.Errorf("OPTIONS %s: got %d Allow %q, want 204 Allow %q", p.template, resp.StatusCode, resp.Header.Get("Allow"), want)
		}
	}
	if resp, raw := e.serve(t, e.handler, req{method: http.MethodOptions, url: "/api/v1/nope"}); resp.StatusCode != 404 || code(raw) != "not_found" {
		t.Errorf("OPTIONS on no route: got %d %s, want 404", resp.StatusCode, code(raw))
	}
}

// TestCORSOnlyForConfiguredOrigins: a preflight from the configured origin is
// answered with what it may do; any other origin, and any origin when none is
// configured, gets no CORS header; credentials are never allowed and the answers
// vary by origin.
func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	e := newMannersEnv(t)
	o := e.opts
	o.CORSOrigins = nil
	closed := ingress.NewHandler(o)
	for _, p := range e.paths {
		m := p.methods[0]
		preflight := map[string]string{"Origin": portal, "Access-Control-Request-Method": m, "Access-Control-Request-Headers": "x-api-key, content-type"}
		resp, _ := e.serve(t, e.handler, req{method: http.MethodOptions, url: p.url, header: preflight})
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != portal || !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-api-key") || !varies(h, "Origin") {
			t.Errorf("preflight %s %s from %s: got %d %v", m, p.template, portal, resp.StatusCode, h)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s: credentials allowed", p.template)
		}
		preflight["Origin"] = "https://evil.example.com"
		resp, _ = e.serve(t, e.handler, req{method: http.MethodOptions, url: p.url, header: preflight})
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || !varies(resp.Header, "Origin") {
			t.Errorf("preflight %s from another origin: got %v", p.template, resp.Header)
		}
		preflight["Origin"] = portal
		if resp, _ = e.serve(t, closed, req{method: http.MethodOptions, url: p.url, header: preflight}); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %s with no origin configured: got %v", p.template, resp.Header)
		}
		// The request itself: readable by the allowed origin only.
		for origin, allowed := range map[string]bool{portal: true, "https://evil.example.com": false} {
			resp, _ := e.serve(t, e.handler, req{method: m, url: p.url, header: map[string]string{"Origin": origin}})
			if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == origin) != allowed || (!allowed && got != "") {
				t.Errorf("%s %s from %s: Access-Control-Allow-Origin %q", m, p.template, origin, got)
			}
			if allowed && !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
				t.Errorf("%s %s: Retry-After not exposed", m, p.template)
			}
			if !varies(resp.Header, "Origin") || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s %s from %s: headers %v", m, p.template, origin, resp.Header)
			}
		}
	}
	// A method the path does not have is not allowed by the preflight either.
	resp, _ := e.serve(t, e.handler, req{method: http.MethodOptions, url: "/api/v1/topics",
		header: map[string]string{"Origin": portal, "Access-Control-Request-Method": "DELETE"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of DELETE /api/v1/topics: allowed %v", resp.Header)
	}
	// "*" answers any origin with "*", never with credentials.
	o.CORSOrigins = []string{"*"}
	resp, _ = e.serve(t, ingress.NewHandler(o), req{method: http.MethodGet, url: "/healthz", header: map[string]string{"Origin": "https://any.example.com"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("any origin: got %v", resp.Header)
	}
}

func varies(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// TestAcceptIsHonoured: on every route and method, an Accept header that allows
// neither the route's media types nor problem JSON is 406; one that allows them
// (exactly, by wildcard, or with the route's own type) is not.
func TestAcceptIsHonoured(t *testing.T) {
	e := newMannersEnv(t)
	for _, p := range e.paths {
		for _, m := range p.methods {
			extra := ingress.Produces(p.routeOf[m])
			negotiates := !slices.Contains(extra, "*/*")
			for accept, refused := range map[string]bool{
				"image/png":                       negotiates,
				"text/html, image/*;q=0.8":        negotiates,
				"application/json;q=0, text/html": negotiates,
				"application/json":                false,
				"application/problem+json":        false,
				"application/*;q=0.2":             false,
				"*/*":                             false,
				"text/html, */*;q=0.1":            false,
				"garbage;;;":                      false, // unreadable: ignored
			} {
				resp, raw := e.serve(t, e.handler, req{method: m, url: p.url, header: map[string]string{"Accept": accept}})
				if got := resp.StatusCode == 406; got != refused {
					t.Errorf("%s %s Accept %q: got %d %s, want 406: %v", m, p.template, accept, resp.StatusCode, code(raw), refused)
				}
				if refused && (code(raw) != "not_acceptable" || resp.Header.Get("Content-Type") != "application/problem+json") {
					t.Errorf("%s %s Accept %q: got %s %q, want a not_acceptable problem", m, p.template, accept, code(raw), resp.Header.Get("Content-Type"))
				}
			}
			for _, own := range extra {
				if resp, _ := e.serve(t, e.handler, req{method: m, url: p.url, header: map[string]string{"Accept": own}}); resp.StatusCode == 406 {
					t.Errorf("%s %s Accept %q (its own type): 406", m, p.template, own)
				}
			}
		}
	}
}

// TestBodiesMustBeJSON: on every route and method, a body sent as anything but JSON
// is 415 before anything else looks at it.
func TestBodiesMustBeJSON(t *testing.T) {
	e := newMannersEnv(t)
	for _, p := range e.paths {
		for _, m := range p.methods {
			if m == http.MethodHead {
				continue
			}
			for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain; charset=utf-8", "multipart/form-data; boundary=x"} {
				resp, raw := e.serve(t, e.handler, req{method: m, url: p.url, body: "name=x", contentType: ct, key: true})
				if resp.StatusCode != 415 || code(raw) != "unsupported_media_type" {
					t.Errorf("%s %s as %s: got %d %s, want 415 unsupported_media_type", m, p.template, ct, resp.StatusCode, code(raw))
				}
			}
		}
	}
}

// TestHEADOnTheEventStreamEnds: HEAD on the proactive stream answers its headers
// and ends, over a real connection, rather than stream nothing for ever.
func TestHEADOnTheEventStreamEnds(t *testing.T) {
	a := newAPI(t)
	srv := httptest.NewServer(ingress.NewHandler(a.options()))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, http.MethodHead, srv.URL+"/api/v1/proactive/stream", nil)
	r.Header.Set("X-API-Key", a.key)
	r.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err) // a stream that did not end would run into the deadline
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD stream: got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
