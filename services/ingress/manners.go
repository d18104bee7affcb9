package ingress

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// The HTTP manners every route shares, applied from the router's own table so that
// a route added later cannot miss them: HEAD wherever GET is, OPTIONS and Allow from
// the routes a path really has, CORS for the configured origins only, 406 for an
// Accept no answer can satisfy and 415 for a body that is not JSON.

// produces lists, per route template, what a route answers besides JSON (and
// problem JSON, which every route may answer). "*/*" turns negotiation off: webhook
// senders are machines whose Accept header dexbridge does not control, and refusing
// them would lose the event.
var produces = map[string][]string{
	"/api/v1/proactive/stream":      {"text/event-stream"},
	"/api/v1/nql/{query_id}/export": {"application/x-ndjson", "text/csv"},
	"/metrics":                      {"text/plain", "application/openmetrics-text"},
	"/api/v1/webhooks/{source}":     {"*/*"},
}

// alwaysProduced is what any route may answer: its JSON or a problem.
var alwaysProduced = []string{"application/json", problem.ContentType}

// addHeadRoutes registers HEAD beside every GET route that lacks it, answered by the
// GET handler with the body dropped.
func addHeadRoutes(r *mux.Router) {
	type head struct {
		tpl string
		h   http.Handler
	}
	var heads []head
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		ms, err := route.GetMethods()
		tpl, terr := route.GetPathTemplate()
		if err == nil && terr == nil && slices.Contains(ms, http.MethodGet) && !slices.Contains(ms, http.MethodHead) {
			heads = append(heads, head{tpl, route.GetHandler()})
		}
		return nil
	})
	for _, h := range heads {
		r.Handle(h.tpl, headOnly(h.h)).Methods(http.MethodHead)
	}
}

// headOnly serves HEAD with a GET handler: the status and headers go out, the body
// is dropped, and the request ends once the headers are written so that a stream
// (server-sent events, a long poll already answered) does not run on for nothing.
func headOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		next.ServeHTTP(&headWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
	})
}

type headWriter struct {
	http.ResponseWriter
	cancel func()
	wrote  bool
}

func (h *headWriter) WriteHeader(code int) {
	if h.wrote {
		return
	}
	h.wrote = true
	h.ResponseWriter.WriteHeader(code)
	if code >= 200 {
		h.cancel()
	}
}

func (h *headWriter) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}

// FlushError has nothing to flush: the body is not sent.
func (h *headWriter) FlushError() error { return nil }

// Unwrap lets http.ResponseController set the connection's deadlines.
func (h *headWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// allowedMethods lists the methods the router answers on r's path, sorted, with
// OPTIONS (which the ingress answers on every path it knows); nil for a path no
// route has.
func allowedMethods(router *mux.Router, r *http.Request) []string {
	var out []string
	_ = router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		ms, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range ms {
			if slices.Contains(out, m) {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if route.Match(probe, &mux.RouteMatch{}) {
				out = append(out, m)
			}
		}
		return nil
	})
	if len(out) == 0 {
		return nil
	}
	out = append(out, http.MethodOptions)
	slices.Sort(out)
	return out
}

// corsPolicy answers browsers from the configured origins; no origin is allowed by
// default. API keys travel in headers, not cookies, so credentials are never
// allowed, and "*" (any origin) is safe to echo as such.
type corsPolicy struct {
	any     bool
	origins map[string]bool // lowercased scheme://host[:port]
}

// The headers a browser may send and read across origins.
var (
	corsAllowHeaders = "Accept, Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Mcp-Protocol-Version, Mcp-Session-Id, " +
		"X-API-Key, X-Request-Id"
	corsExposeHeaders = "Allow, Location, Mcp-Session-Id, Retry-After, RateLimit-Limit, RateLimit-Policy, RateLimit-Remaining, RateLimit-Reset, " +
		"X-Request-Id, " + headerInstance + ", " + headerDataAsOf + ", " + headerTruncated + ", " + headerRows
)

func newCORSPolicy(origins []string) corsPolicy {
	p := corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		p.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return p
}

func (p corsPolicy) enabled() bool { return p.any || len(p.origins) > 0 }

// allow returns the Access-Control-Allow-Origin value for origin, "" when refused.
func (p corsPolicy) allow(origin string) string {
	if origin == "" || origin == "null" {
		return ""
	}
	if p.any {
		return "*"
	}
	if p.origins[strings.ToLower(origin)] {
		return origin
	}
	return ""
}

// manners answers OPTIONS (a CORS preflight or a plain question) for every path a
// route has, and adds the CORS headers to the answers to allowed origins.
func manners(router *mux.Router, cors corsPolicy) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			origin := r.Header.Get("Origin")
			allowOrigin := ""
			if cors.enabled() {
				// The answer depends on the origin: caches must keep them apart.
				h.Add("Vary", "Origin")
				allowOrigin = cors.allow(origin)
			}
			if r.Method == http.MethodOptions {
				methods := allowedMethods(router, r)
				if methods == nil {
					next.ServeHTTP(w, r) // 404
					return
				}
				allow := strings.Join(methods, ", ")
				h.Set("Allow", allow)
				if want := r.Header.Get("Access-Control-Request-Method"); origin != "" && want != "" {
					h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
					if allowOrigin != "" && slices.Contains(methods, want) {
						h.Set("Access-Control-Allow-Origin", allowOrigin)
						h.Set("Access-Control-Allow-Methods", allow)
						h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
						h.Set("Access-Control-Max-Age", "600")
					}
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if allowOrigin != "" {
				h.Set("Access-Control-Allow-Origin", allowOrigin)
				h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// negotiate refuses with 406 a request whose Accept header rules out everything the
// matched route can answer, and with 415 a body that is not JSON. It runs inside
// the router, so unknown paths and methods are answered 404 and 405 first.
func (hs *handlers) negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offered := alwaysProduced
		if route := mux.CurrentRoute(r); route != nil {
			if tpl, err := route.GetPathTemplate(); err == nil {
				offered = append(slices.Clip(alwaysProduced), produces[tpl]...)
			}
		}
		if accept := strings.Join(r.Header.Values("Accept"), ","); !slices.Contains(offered, "*/*") && !acceptable(accept, offered) {
			hs.fail(w, r, problem.New(problem.NotAcceptable, "this route answers %s; the Accept header allows none of them",
				strings.Join(offered, ", ")))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && hasBody(r) && !isJSON(ct) {
			hs.fail(w, r, problem.New(problem.UnsupportedMedia, "send the body as application/json"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ, sub string
	q        float64
}

// parseAccept reads an Accept header (RFC 9110 section 12.5.1); elements that do not
// parse are skipped, as a header the server cannot read is one it may ignore.
func parseAccept(s string) []mediaRange {
	var out []mediaRange
	for _, part := range strings.Split(s, ",") {
		params := strings.Split(part, ";")
		typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(params[0])), "/")
		if !ok || !token(typ) || !token(sub) || (typ == "*" && sub != "*") {
			continue
		}
		m := mediaRange{typ: typ, sub: sub, q: 1}
		valid := true
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				q, ok := qvalue(strings.TrimSpace(v))
				if !ok {
					valid = false
					break
				}
				m.q = q
			}
		}
		if valid {
			out = append(out, m)
		}
	}
	return out
}

// qvalue reads a weight: 0 to 1 with at most three decimals.
func qvalue(s string) (float64, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) == 1 {
		return float64(s[0] - '0'), true
	}
	if s[1] != '.' {
		return 0, false
	}
	q, scale := float64(s[0]-'0'), 0.1
	for _, c := range s[2:] {
		if c < '0' || c > '9' || (s[0] == '1' && c != '0') {
			return 0, false
		}
		q += float64(c-'0') * scale
		scale /= 10
	}
	return q, true
}

func token(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// acceptable reports whether an Accept header allows one of the offered media
// types: the most specific range matching a type decides its weight. No header, or
// one of which nothing parses, allows anything.
func acceptable(header string, offered []string) bool {
	ranges := parseAccept(header)
	if len(ranges) == 0 {
		return true
	}
	for _, o := range offered {
		typ, sub, _ := strings.Cut(o, "/")
		best, q := -1, 0.0
		for _, m := range ranges {
			spec := -1
			switch {
			case m.typ == typ && m.sub == sub:
				spec = 2
			case m.typ == typ && m.sub == "*":
				spec = 1
			case m.typ == "*":
				spec = 0
			}
			if spec > best {
				best, q = spec, m.q
			}
		}
		if best >= 0 && q > 0 {
			return true
		}
	}
	return false
}

// methodNotAllowedOn answers 405 with the methods the path does have.
func (hs *handlers) methodNotAllowedOn(router *mux.Router) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		methods := allowedMethods(router, r)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		problem.Write(w, r, requestid.From(r.Context()), problem.New(problem.MethodNotAllowed,
			"method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(methods, ", ")))
	}
}
