package ingress

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

type principalKey struct{}

// principalFrom is the API key of an authenticated request.
func principalFrom(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

// presentedKey reads X-API-Key (the legacy header) or Authorization: Bearer.
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// withKey admits requests carrying a valid key with scope, under the key's own rate
// limit when it has one.
func (h *handlers) withKey(scope auth.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opts.Keys.Authenticate(r.Context(), presentedKey(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dexbridge"`)
			h.fail(w, r, err)
			return
		}
		if !p.Has(scope) {
			h.fail(w, r, problem.New(problem.Forbidden, "this API key lacks the %q scope", scope))
			return
		}
		if err := p.ActFor(onBehalfOf(r)); err != nil { // delegate.go
			h.fail(w, r, err)
			return
		}
		if p.RateLimitPerSecond != nil {
			l := h.opts.Limiters.Limiter("apikey:"+p.KeyID, ratelimit.Rate{PerSecond: *p.RateLimitPerSecond, Burst: max(1, int(*p.RateLimitPerSecond))})
			if _, err := l.Take(r.Context(), 0); err != nil {
				if _, refused := err.(*ratelimit.Limited); refused {
					h.opts.Metrics.RateLimited("apikey")
					h.opts.Metrics.KeyRateLimited("apikey", p.KeyID)
				}
				h.fail(w, r, limitProblem(err, "this API key's rate limit is exceeded"))
				return
			}
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		ctx = natsrpc.WithHeader(ctx, events.HeaderAPIKeyID, p.KeyID)
		next(w, r.WithContext(ctx))
	}
}

// keyEndpointRate is the limit on the API-key endpoints: one request per 10 s
// per client, against brute force.
var keyEndpointRate = ratelimit.Rate{PerSecond: 0.1, Burst: 1}

// withBasic admits requests with an instance's Nexthink credentials or the admin
// credential, at most one per 10 s per client address.
func (h *handlers) withBasic(next func(w http.ResponseWriter, r *http.Request, who string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.keyEndpointLimited(w, r) {
			return
		}
		h.basic(w, r, next)
	}
}

// withBasicOrAdmin admits, like withBasic, HTTP Basic, or an API key with the admin
// scope; under the same limit of one request per 10 s per client address.
func (h *handlers) withBasicOrAdmin(next func(w http.ResponseWriter, r *http.Request, who string)) http.HandlerFunc {
	byKey := h.withKey(auth.Admin, func(w http.ResponseWriter, r *http.Request) {
		next(w, r, "key:"+principalFrom(r.Context()).KeyID)
	})
	return func(w http.ResponseWriter, r *http.Request) {
		if h.keyEndpointLimited(w, r) {
			return
		}
		if presentedKey(r) != "" {
			byKey(w, r)
			return
		}
		h.basic(w, r, next)
	}
}

// keyEndpointLimited answers 429 (true) beyond one request per 10 s per client.
func (h *handlers) keyEndpointLimited(w http.ResponseWriter, r *http.Request) bool {
	l := h.opts.Limiters.Limiter("keys-endpoint:"+clientAddr(r), keyEndpointRate)
	if _, err := l.Take(r.Context(), 0); err != nil {
		h.opts.Metrics.RateLimited("keys_endpoint")
		h.fail(w, r, limitProblem(err, "the API-key endpoints take one request per 10 seconds per client"))
		return true
	}
	return false
}

// basic admits a request with an instance's Nexthink credentials or the admin
// credential.
func (h *handlers) basic(w http.ResponseWriter, r *http.Request, next func(w http.ResponseWriter, r *http.Request, who string)) {
	user, pass, ok := r.BasicAuth()
	who, valid := "", false
	if ok {
		who, valid = h.opts.Credentials.Check(user, pass)
	}
	if !valid {
		w.Header().Set("WWW-Authenticate", `Basic realm="dexbridge", charset="UTF-8"`)
		h.fail(w, r, problem.New(problem.Unauthorized, "send an instance's Nexthink API credentials or the admin credential with HTTP Basic"))
		return
	}
	next(w, r, who)
}

// limitProblem turns a limiter refusal into a 429; other limiter errors (the
// database is down) are 503.
func limitProblem(err error, detail string) error {
	if l, ok := err.(*ratelimit.Limited); ok {
		return l.Problem(detail)
	}
	return problem.Wrap(problem.ServiceUnavailable, err, "rate limits cannot be checked right now").Retry(time.Second)
}

// clientAddr is the client's IP address (the connection's peer).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// revokeKeyEither takes an admin-scoped API key or, failing that, HTTP Basic.
func (h *handlers) revokeKeyEither(w http.ResponseWriter, r *http.Request) {
	if presentedKey(r) != "" {
		h.withKey(auth.Admin, h.revokeByKey)(w, r)
		return
	}
	h.withBasic(h.revokeKey)(w, r)
}
