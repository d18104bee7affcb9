package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// publicDNS resolves every name but localhost to a public address.
type publicDNS struct{}

func (publicDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

// syncBuffer is a log destination tests read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type subsAPI struct {
	db         *store.DB
	h          http.Handler
	bot, other string // read keys
	admin      string
	log        *syncBuffer
}

func newSubsAPI(t *testing.T, policy netguard.Policy, resolver netguard.Resolver, max int) *subsAPI {
	t.Helper()
	a := &subsAPI{db: store.New(testenv.Postgres(t)), log: &syncBuffer{}}
	keys := auth.NewKeys(a.db)
	for _, k := range []struct {
		to    *string
		scope string
	}{{&a.bot, "read"}, {&a.other, "read"}, {&a.admin, "admin"}} {
		var err error
		if *k.to, _, err = keys.Create(context.Background(), auth.NewKey{Name: "k", Scopes: []string{k.scope, "read"}}); err != nil {
			t.Fatal(err)
		}
	}
	subs := ingress.NewSubscriptions(ingress.SubscriptionsOptions{DB: a.db, Policy: policy, Resolver: resolver,
		Instances: []string{"eu", "us"}, Max: max})
	log := slog.New(slog.NewTextHandler(a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a.h = apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{Keys: auth.NewKeys(a.db), Credentials: auth.NewCredentials(nil),
		Limiters: ratelimit.NewShared(a.db), Log: log, Subscriptions: subs}))
	return a
}

func (a *subsAPI) do(t *testing.T, method, path, key, body string) (int, http.Header, map[string]any, string) {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("X-API-Key", key)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, r)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, rec.Header(), out, rec.Body.String()
}

// TestSubscriptionURLsStayOutside: with the default configuration, URLs that are
// not https or that reach loopback, link-local, private or unspecified addresses,
// directly or through a name, are refused with a 422 naming the field.
func TestSubscriptionURLsStayOutside(t *testing.T) {
	a := newSubsAPI(t, netguard.Policy{}, publicDNS{}, 10)
	for _, tc := range []struct{ body, field, detail string }{
		{`{"url":"https://127.0.0.1/hook"}`, "url", "loopback"},
		{`{"url":"https://10.1.2.3/hook"}`, "url", "private"},
		{`{"url":"https://169.254.169.254/latest/meta-data/"}`, "url", "link-local"},
		{`{"url":"https://[::1]:8443/hook"}`, "url", "loopback"},
		{`{"url":"https://0.0.0.0/"}`, "url", "unspecified"},
		{`{"url":"https://bot.localhost/hook"}`, "url", "resolves to 127.0.0.1"},
		{`{"url":"http://bot.example.com/hook"}`, "url", "https"},
		{`{}`, "url", "required"},
		{`{"url":"https://bot.example.com/","locale":"not a tag"}`, "locale", "BCP 47"},
		{`{"url":"https://bot.example.com/","instances":["mars"]}`, "instances[0]", "eu, us"},
		{`{"url":"https://bot.example.com/","topics":["ok","Not A Topic"]}`, "topics[1]", "topic id"},
		{`{"url":"https://bot.example.com/","monitors":[" "]}`, "monitors[0]", "empty"},
	} {
		code, _, body, _ := a.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", a.bot, tc.body)
		if code != 422 || body["code"] != "unprocessable" || body["field"] != tc.field || !strings.Contains(body["detail"].(string), tc.detail) {
			t.Errorf("%s: got %d %v, want 422 on %s saying %q", tc.body, code, body, tc.field, tc.detail)
		}
	}
	if subs, _ := a.db.Subscriptions(context.Background()); len(subs) != 0 {
		t.Errorf("stored %d refused subscriptions", len(subs))
	}
	// The operator may allow plain http and an internal network.
	allowed := newSubsAPI(t, netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}, publicDNS{}, 10)
	if code, _, body, _ := allowed.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", allowed.bot, `{"url":"http://10.20.1.2:8080/hook"}`); code != 201 {
		t.Errorf("allowed network: got %d %v", code, body)
	}
	if code, _, body, _ := allowed.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", allowed.bot, `{"url":"http://10.21.1.2/hook"}`); code != 422 {
		t.Errorf("outside the allowed network: got %d %v", code, body)
	}
}

// TestSubscriptionLifecycle: the secret is in the creation's answer and nowhere
// else (get, list, logs); a key sees its own subscriptions, an admin every one;
// resume and delete; the limit.
func TestSubscriptionLifecycle(t *testing.T) {
	a := newSubsAPI(t, netguard.Policy{}, publicDNS{}, 2)
	code, hdr, created, raw := a.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", a.bot,
		`{"url":"https://bot.example.com/dexbridge?token=t","monitors":["Outlook crashes","outlook CRASHES"],"topics":["outlook"],"instances":["us"],"locale":"de-ch"}`)
	if code != 201 {
		t.Fatalf("create: got %d %s", code, raw)
	}
	secret, _ := created["secret"].(string)
	id, _ := created["id"].(string)
	if !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(secret) || hdr.Get("Location") != "/api/v1/proactive/subscriptions/"+id {
		t.Fatalf("create: got secret %q location %q", secret, hdr.Get("Location"))
	}
	if created["locale"] != "de-CH" || created["state"] != "active" || created["origin"] != "api" ||
		len(created["monitors"].([]any)) != 1 || created["instances"].([]any)[0] != "us" {
		t.Errorf("create: got %v, want the canonical locale and the filters once each", created)
	}
	for _, path := range []string{"/api/v1/proactive/subscriptions", "/api/v1/proactive/subscriptions/" + id} {
		for _, key := range []string{a.bot, a.admin} {
			code, _, _, raw := a.do(t, http.MethodGet, path, key, "")
			if code != 200 || strings.Contains(raw, secret) || strings.Contains(raw, `"secret"`) || !strings.Contains(raw, id) {
				t.Errorf("GET %s: got %d %s, want it without the secret", path, code, raw)
			}
		}
	}
	// Another key neither sees nor touches it.
	if _, _, body, _ := a.do(t, http.MethodGet, "/api/v1/proactive/subscriptions", a.other, ""); len(body["subscriptions"].([]any)) != 0 {
		t.Errorf("another key's list: got %v", body)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if code, _, _, _ := a.do(t, m, "/api/v1/proactive/subscriptions/"+id, a.other, ""); code != 404 {
			t.Errorf("%s by another key: got %d, want 404", m, code)
		}
	}
	if code, _, body, _ := a.do(t, http.MethodPost, "/api/v1/proactive/subscriptions/"+id+"/resume", a.bot, ""); code != 200 || body["state"] != "active" {
		t.Errorf("resume an active one: got %d %v", code, body)
	}
	// The configured callback: listed to admins, not deletable here.
	if err := a.db.EnsureConfigSubscription(context.Background(), "https://bot.example.com/callback"); err != nil {
		t.Fatal(err)
	}
	if _, _, body, _ := a.do(t, http.MethodGet, "/api/v1/proactive/subscriptions", a.admin, ""); len(body["subscriptions"].([]any)) != 2 {
		t.Errorf("admin list: got %v, want the configured callback too", body)
	}
	if code, _, _, _ := a.do(t, http.MethodDelete, "/api/v1/proactive/subscriptions/"+store.ConfigSubscriptionID, a.admin, ""); code != 409 {
		t.Errorf("delete the configured callback: got %d, want 409", code)
	}
	// The limit counts the API's subscriptions.
	if code, _, _, _ := a.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", a.other, `{"url":"https://other.example.com/"}`); code != 201 {
		t.Errorf("second: got %d", code)
	}
	if code, _, body, _ := a.do(t, http.MethodPost, "/api/v1/proactive/subscriptions", a.other, `{"url":"https://third.example.com/"}`); code != 409 {
		t.Errorf("third past the limit of 2: got %d %v", code, body)
	}
	if code, _, _, _ := a.do(t, http.MethodDelete, "/api/v1/proactive/subscriptions/"+id, a.bot, ""); code != 204 {
		t.Errorf("delete: got %d", code)
	}
	if code, _, _, _ := a.do(t, http.MethodGet, "/api/v1/proactive/subscriptions/"+id, a.bot, ""); code != 404 {
		t.Errorf("get after delete: got %d", code)
	}
	if code, _, _, _ := a.do(t, http.MethodGet, "/api/v1/proactive/subscriptions/not-an-id", a.bot, ""); code != 404 {
		t.Errorf("get a malformed id: got %d", code)
	}
	if strings.Contains(a.log.String(), secret) || strings.Contains(a.log.String(), "whsec_") {
		t.Errorf("the logs hold the secret:\n%s", a.log.String())
	}
}
