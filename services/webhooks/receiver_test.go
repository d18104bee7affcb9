package webhooks_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "")
	tests := []struct {
		name      string
		r         req
		status    int
		challenge string // start of WWW-Authenticate
	}{
		{"no credential", req{body: body}, 401, "Basic"},
		{"wrong password", req{body: body, basic: &[2]string{"nexthink", "guess"}}, 401, "Basic"},
		{"wrong user", req{body: body, basic: &[2]string{"admin", nexthinkPassword}}, 401, "Basic"},
		{"bearer where basic is configured", req{body: body, bearer: nexthinkPassword}, 401, "Basic"},
		{"right credential", req{body: body, basic: &[2]string{"nexthink", nexthinkPassword}}, 202, ""},
		{"PUT is accepted", req{method: http.MethodPut, body: alert("Slow PC", "open", "PC-A", "", ""), basic: &[2]string{"nexthink", nexthinkPassword}}, 202, ""},
		{"PATCH is accepted", req{method: http.MethodPatch, body: alert("Slow PC", "open", "PC-B", "", ""), basic: &[2]string{"nexthink", nexthinkPassword}}, 202, ""},
		{"GET is not", req{method: http.MethodGet, basic: &[2]string{"nexthink", nexthinkPassword}}, 405, ""},
		{"bearer source without token", req{source: "itsm", body: `{"alert":{"name":"Slow PC"},"upn":"a@x"}`}, 401, "Bearer"},
		{"bearer source with wrong token", req{source: "itsm", body: `{"alert":{"name":"Slow PC"},"upn":"a@x"}`, bearer: "nope"}, 401, "Bearer"},
		{"bearer source with token", req{source: "itsm", body: `{"alert":{"name":"Slow PC"},"upn":"a@x"}`, bearer: itsmToken}, 202, ""},
		{"another source's token", req{source: "nexthink", body: body, bearer: itsmToken}, 401, "Basic"},
		{"unknown source", req{source: "zabbix", body: body, bearer: itsmToken}, 404, ""},
		{"malformed source", req{source: "Zab..bix", body: body}, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.send(t, tt.r)
			if got.status != tt.status {
				t.Fatalf("got %d %v, want %d", got.status, got.body, tt.status)
			}
			if ch := got.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, tt.challenge) || (tt.challenge == "") != (ch == "") {
				t.Errorf("WWW-Authenticate: got %q, want %q...", ch, tt.challenge)
			}
			if tt.status == 202 && (!strings.HasPrefix(got.body["id"].(string), "wh_") || got.body["duplicate"] != false) {
				t.Errorf("got %v, want a new webhook id", got.body)
			}
		})
	}
}

func TestDisabledSourceIsNotFound(t *testing.T) {
	e := newEnv(t, envOptions{withoutSecret: "WEBHOOK_QUICK_TOKEN"})
	got := e.send(t, req{source: "quick", body: alert("Slow PC", "open", "PC-A", "", ""), bearer: itsmToken})
	if got.status != 404 {
		t.Errorf("got %d, want 404 for a source without its secret", got.status)
	}
	if !strings.Contains(e.logs.String(), "webhook source disabled") || !strings.Contains(e.logs.String(), "WEBHOOK_QUICK_TOKEN") {
		t.Error("the disabled source was not logged with the variable to set")
	}
}

func TestSignatures(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := `{"monitor":"Slow PC","device":"PC-SIGNED","status":"open"}`
	now := time.Now()
	sign := func(secret string, at time.Time, b string) map[string]string {
		return map[string]string{signature.Header: signature.Sign([]byte(secret), at, []byte(b))}
	}
	tests := []struct {
		name   string
		header map[string]string
		body   string
		status int
		reason string
		dup    bool
	}{
		{"no signature", nil, body, 401, "no signature header", false},
		{"malformed", map[string]string{signature.Header: "sha256=abc"}, body, 401, "malformed", false},
		{"wrong secret", sign("not-the-secret", now, body), body, 401, "does not match", false},
		{"body changed after signing", sign(signingSecret, now, body), strings.Replace(body, "PC-SIGNED", "PC-OTHER", 1), 401, "does not match", false},
		{"replay outside the window", sign(signingSecret, now.Add(-6*time.Minute), body), body, 401, "tolerance", false},
		{"from the future", sign(signingSecret, now.Add(6*time.Minute), body), body, 401, "tolerance", false},
		{"good", sign(signingSecret, now, body), body, 202, "", false},
		{"replay inside the window is a duplicate", sign(signingSecret, now, body), body, 202, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.send(t, req{source: "signed", body: tt.body, header: tt.header})
			if got.status != tt.status {
				t.Fatalf("got %d %v, want %d", got.status, got.body, tt.status)
			}
			if detail, _ := got.body["detail"].(string); !strings.Contains(detail, tt.reason) {
				t.Errorf("detail: got %q, want it to say %q", detail, tt.reason)
			}
			if tt.status == 202 && got.body["duplicate"] != tt.dup {
				t.Errorf("duplicate: got %v, want %v", got.body["duplicate"], tt.dup)
			}
		})
	}
}

func TestBodyChecks(t *testing.T) {
	e := newEnv(t, envOptions{})
	creds := &[2]string{"nexthink", nexthinkPassword}
	big := `{"monitor":"Slow PC","device":"PC-1","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"too large", req{body: big, basic: creds}, 413, "payload_too_large"},
		{"text", req{body: `{"monitor":"x"}`, ctype: "text/plain", basic: creds}, 415, "unsupported_media_type"},
		{"array", req{body: `[{"monitor":"x"}]`, basic: creds}, 400, "invalid_request"},
		{"malformed", req{body: `{"monitor":`, basic: creds}, 400, "invalid_request"},
		{"two objects", req{body: `{} {}`, basic: creds}, 400, "invalid_request"},
		{"empty", req{body: ``, basic: creds}, 400, "invalid_request"},
		{"not UTF-8", req{body: "{\"monitor\":\"\xff\"}", basic: creds}, 400, "invalid_request"},
		{"delivery id with spaces", req{body: `{}`, basic: creds, header: map[string]string{"Idempotency-Key": "a b"}}, 400, "invalid_request"},
		{"delivery id too long", req{body: `{}`, basic: creds, header: map[string]string{"Idempotency-Key": strings.Repeat("a", 201)}}, 400, "invalid_request"},
		{"credential is checked before the body", req{body: big}, 401, "unauthorized"},
		{"vendor JSON type", req{body: `{"monitor":"Slow PC","device":"PC-9"}`, ctype: "application/vnd.nexthink+json; charset=utf-8", basic: creds}, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.send(t, tt.r)
			if got.status != tt.status || (tt.code != "" && got.body["code"] != tt.code) {
				t.Errorf("got %d %v, want %d %s", got.status, got.body["code"], tt.status, tt.code)
			}
		})
	}
}

// TestDuplicatesAreProcessedOnce sends the same webhook again, by delivery id and by
// identical body, inside JetStream's duplicate window and after it, and finds each
// processed once.
func TestDuplicatesAreProcessedOnce(t *testing.T) {
	for _, seen := range []bool{true, false} {
		name := "receiver checks PostgreSQL"
		if !seen {
			name = "only the worker's record"
		}
		t.Run(name, func(t *testing.T) {
			// The window is long enough for the first four posts to fall in it
			// on a loaded machine, short enough to wait out below.
			const window = 2 * time.Second
			e := newEnv(t, envOptions{duplicateWindow: window, noSeen: !seen})
			loadCache(t, e.pool, theFleet...)
			e.startWorker(t, nil)
			byID := alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:04:05")
			noID := alert("OneDrive not running", "open", "PC-ONEDRIVE", "", "2026-01-02 03:04:05")
			id := map[string]string{"Idempotency-Key": "delivery-0001"}
			first := e.nexthink(t, byID, id)
			// The same delivery id with another body (a retry whose times moved) is the same webhook.
			again := e.nexthink(t, strings.Replace(byID, "03:04:05", "03:09:05", 1), id)
			firstNoID := e.nexthink(t, noID, nil)
			againNoID := e.nexthink(t, noID, nil)
			for _, a := range []answer{first, again, firstNoID, againNoID} {
				if a.status != 202 {
					t.Fatalf("got %d %v, want 202", a.status, a.body)
				}
			}
			if first.body["duplicate"] != false || again.body["duplicate"] != true || again.body["id"] != first.body["id"] {
				t.Errorf("same delivery id: got %v then %v, want the same id, the second a duplicate", first.body, again.body)
			}
			if firstNoID.body["duplicate"] != false || againNoID.body["duplicate"] != true || againNoID.body["id"] != firstNoID.body["id"] {
				t.Errorf("same body: got %v then %v, want the same id, the second a duplicate", firstNoID.body, againNoID.body)
			}
			waitFor(t, "both webhooks processed", func() bool { return len(e.deliveries(t)) == 2 })

			// Past JetStream's window, the stream no longer knows them: PostgreSQL does.
			time.Sleep(window + 200*time.Millisecond)
			late := e.nexthink(t, byID, id)
			lateNoID := e.nexthink(t, noID, nil)
			if late.status != 202 || lateNoID.status != 202 {
				t.Fatalf("late duplicates: got %d and %d, want 202", late.status, lateNoID.status)
			}
			if seen && (late.body["duplicate"] != true || lateNoID.body["duplicate"] != true) {
				t.Errorf("late duplicates: got %v and %v, want them reported as duplicates", late.body, lateNoID.body)
			}
			// A marker webhook sent after them is processed after them (one consumer,
			// in order within its concurrency), so once it is done they are too.
			marker := e.nexthink(t, alert("Slow PC", "open", "PC-LOW-DISK", "", ""), nil)
			waitFor(t, "the marker processed", func() bool { return len(e.deliveries(t)) == 3 })
			waitFor(t, "the stream drained", func() bool {
				s, err := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamWebhooks))
				if err != nil {
					t.Fatal(err)
				}
				info, err := s.Info(context.Background())
				return err == nil && info.State.Msgs == 0
			})
			_ = marker
			ds := e.deliveries(t)
			if len(ds) != 3 {
				t.Fatalf("got %d dedupe records, want 3", len(ds))
			}
			evs := e.events(t)
			count := map[string]int{}
			for _, ev := range evs {
				count[ev.Monitor]++
			}
			if count["Outlook crashes"] != 1 || count["OneDrive not running"] != 1 {
				t.Errorf("events per monitor: got %v, want one each", count)
			}
		})
	}
}

// TestUnconfirmedWritesAre503 takes JetStream away two ways: the stream deleted, and
// the server stopped. The sender gets 503 with Retry-After, then 202 once it is back.
func TestUnconfirmedWritesAre503(t *testing.T) {
	t.Run("stream deleted", func(t *testing.T) {
		e := newEnv(t, envOptions{publishTimeout: time.Second})
		if got := e.nexthink(t, alert("Slow PC", "open", "PC-1", "", ""), nil); got.status != 202 {
			t.Fatalf("got %d, want 202", got.status)
		}
		if err := e.js.DeleteStream(context.Background(), e.subjects.Stream(events.StreamWebhooks)); err != nil {
			t.Fatal(err)
		}
		got := e.nexthink(t, alert("Slow PC", "open", "PC-2", "", ""), nil)
		if got.status != 503 || got.header.Get("Retry-After") == "" || got.body["code"] != "service_unavailable" {
			t.Fatalf("got %d %v (Retry-After %q), want 503 with Retry-After", got.status, got.body, got.header.Get("Retry-After"))
		}
		// The receiver creates the stream again (at most every 2 s) and the retry is stored.
		waitFor(t, "the retry accepted", func() bool {
			return e.nexthink(t, alert("Slow PC", "open", "PC-2", "", ""), nil).status == 202
		})
	})
	t.Run("server stopped", func(t *testing.T) {
		dir := t.TempDir()
		srv := testenv.StartNATS(t, dir)
		port := srv.Addr().(*net.TCPAddr).Port
		e := newEnv(t, envOptions{natsURL: srv.ClientURL(), publishTimeout: 500 * time.Millisecond})
		if got := e.nexthink(t, alert("Slow PC", "open", "PC-1", "", ""), nil); got.status != 202 {
			t.Fatalf("got %d, want 202", got.status)
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		start := time.Now()
		got := e.nexthink(t, alert("Slow PC", "open", "PC-2", "", ""), nil)
		if got.status != 503 || got.header.Get("Retry-After") == "" {
			t.Fatalf("got %d %v, want 503 with Retry-After", got.status, got.body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("503 took %v, want it within about the publish timeout", d)
		}
		// Back on the same port and store: the retry is accepted and the first webhook
		// is still there.
		testenv.StartNATSOnPort(t, dir, port)
		waitFor(t, "the retry accepted", func() bool {
			return e.nexthink(t, alert("Slow PC", "open", "PC-2", "", ""), nil).status == 202
		})
		s, err := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamWebhooks))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil || info.State.Msgs != 2 {
			t.Errorf("stream after restart: got %v messages (%v), want 2: the accepted webhook survived", info.State.Msgs, err)
		}
	})
}
