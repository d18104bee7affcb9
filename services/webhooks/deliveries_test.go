package webhooks_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/auth"
)

// list calls GET /api/v1/webhooks/deliveries?query with key.
func (e *env) list(t *testing.T, key, query string) (int, api.WebhookDeliveries, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/webhooks/deliveries?"+query, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, r)
	var page api.WebhookDeliveries
	var raw map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	return rec.Code, page, raw
}

// TestOperatorsSeeEveryWebhook sends webhooks with every outcome and reads them back
// from the listing: each with its outcome and why, filtered by source and outcome,
// page by page with cursors that cannot be forged or carried to another query.
func TestOperatorsSeeEveryWebhook(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	e.startWorker(t, nil)
	keys := auth.NewKeys(e.pool)
	admin, _, err := keys.Create(context.Background(), auth.NewKey{Name: "ops", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	reader, _, err := keys.Create(context.Background(), auth.NewKey{Name: "bot", Scopes: []string{"read", "diagnose", "remediate"}})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]string{} // webhook id: outcome
	send := func(outcome string, a answer) {
		t.Helper()
		if a.status != 202 {
			t.Fatalf("%s: got %d %v", outcome, a.status, a.body)
		}
		want[a.body["id"].(string)] = outcome
		// One at a time, so that the listing's order is the sending order.
		waitFor(t, outcome, func() bool { return len(e.deliveries(t)) == len(want) })
	}
	send("opened", e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:00:00"), nil))
	send("suppressed", e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:10:00"), nil))
	send("closed", e.nexthink(t, alert("Outlook crashes", "closed", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:00:00"), nil))
	send("nothing_to_close", e.nexthink(t, alert("Outlook crashes", "closed", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:20:00"), nil))
	send("unresolved", e.nexthink(t, alert("Slow PC", "open", "EU-001499", "", "2026-01-02 03:00:00"), nil))
	send("ignored", e.nexthink(t, alert("Printer on fire", "open", "PC-ONEDRIVE", "", ""), nil))
	send("opened", e.send(t, req{source: "itsm", bearer: itsmToken, body: `{"alert":{"name":"Slow PC","state":"open"},"upn":"pparker@example.com"}`}))
	for _, body := range []string{`{}`, `{"foo":"bar"}`} {
		a := e.nexthink(t, body, nil)
		if a.status != 422 || a.body["code"] != "unprocessable" || a.body["field"] != "monitor" || !strings.Contains(a.body["detail"].(string), "monitor") {
			t.Errorf("%s: got %d %v, want 422 naming the monitor", body, a.status, a.body)
		}
		want["refused "+body] = "invalid"
	}
	waitFor(t, "every record", func() bool { return len(e.deliveries(t)) == len(want) })

	status, page, raw := e.list(t, admin, "")
	if status != 200 || len(page.Deliveries) != len(want) || raw["next_cursor"] != nil {
		t.Fatalf("listing: got %d with %d deliveries, next %v, want %d and no next page", status, len(page.Deliveries), raw["next_cursor"], len(want))
	}
	got := map[string]int{}
	for i, d := range page.Deliveries {
		got[d.Outcome]++
		if i > 0 && d.ProcessedAt.After(page.Deliveries[i-1].ProcessedAt) {
			t.Errorf("not newest first at %d", i)
		}
		if w, ok := want[d.ID]; ok && w != d.Outcome {
			t.Errorf("%s: got outcome %s (%s), want %s", d.ID, d.Outcome, d.Detail, w)
		}
		if d.Detail == "" && d.Outcome != "opened" {
			t.Errorf("%s %s: no detail says why", d.ID, d.Outcome)
		}
		switch d.Outcome {
		case "opened", "suppressed", "unresolved", "closed":
			if len(d.Events) != 1 {
				t.Errorf("%s %s: got events %+v, want the one it recorded or closed", d.ID, d.Outcome, d.Events)
			}
		case "invalid":
			if len(d.Payload) == 0 || !strings.Contains(d.Detail, "refused with 422") {
				t.Errorf("%s: got payload %s detail %q, want the payload kept and the refusal", d.ID, d.Payload, d.Detail)
			}
		}
		if d.Outcome == "unresolved" && (!strings.Contains(d.Detail, "EU-001499 is not in the cache") || d.Events[0].Status != "unresolved") {
			t.Errorf("unresolved: got %q %+v", d.Detail, d.Events)
		}
		if d.Outcome == "suppressed" && !strings.Contains(d.Detail, "suppression window") {
			t.Errorf("suppressed: got %q, want why", d.Detail)
		}
	}
	if want := map[string]int{"opened": 2, "suppressed": 1, "closed": 1, "nothing_to_close": 1, "unresolved": 1, "ignored": 1, "invalid": 2}; !maps.Equal(got, want) {
		t.Errorf("outcomes: got %v, want %v", got, want)
	}

	// Filters.
	if _, p, _ := e.list(t, admin, "source=itsm"); len(p.Deliveries) != 1 || p.Deliveries[0].Source != "itsm" {
		t.Errorf("source=itsm: got %+v", p.Deliveries)
	}
	if _, p, _ := e.list(t, admin, "outcome=invalid&source=nexthink"); len(p.Deliveries) != 2 {
		t.Errorf("outcome=invalid: got %d, want 2", len(p.Deliveries))
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if _, p, _ := e.list(t, admin, "since="+future); len(p.Deliveries) != 0 {
		t.Errorf("since an hour from now: got %d, want none", len(p.Deliveries))
	}

	// Pages of 3: every webhook once, in the same order as the whole listing.
	var paged []string
	var last string
	query := "limit=3&source=nexthink"
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the cursors never end")
		}
		status, p, _ := e.list(t, admin, query)
		if status != 200 || len(p.Deliveries) > 3 {
			t.Fatalf("%s: got %d with %d", query, status, len(p.Deliveries))
		}
		for _, d := range p.Deliveries {
			paged = append(paged, d.ID)
		}
		if p.NextCursor == nil {
			break
		}
		last = *p.NextCursor
		query = "limit=3&source=nexthink&cursor=" + url.QueryEscape(last)
	}
	var whole []string
	for _, d := range page.Deliveries {
		if d.Source == "nexthink" {
			whole = append(whole, d.ID)
		}
	}
	if !slices.Equal(paged, whole) {
		t.Errorf("pages: got %v, want %v", paged, whole)
	}

	// Bad parameters and cursors are 400 naming them; the listing is for admins.
	forged := []byte(last)
	forged[len(forged)/2] ^= 0x01
	bad := []struct {
		query, field string
	}{
		{"cursor=" + url.QueryEscape(string(forged)) + "&source=nexthink", "cursor"},
		{"cursor=" + url.QueryEscape(last) + "&source=itsm", "cursor"},
		{"cursor=" + url.QueryEscape(last), "cursor"},
		{"cursor=AAAA", "cursor"},
		{"outcome=processed", "outcome"},
		{"source=Not%20A%20Source", "source"},
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"colour=red", "colour"},
		{"source=a&source=b", "source"},
	}
	for _, b := range bad {
		if status, _, body := e.list(t, admin, b.query); status != 400 || body["code"] != "invalid_request" || body["field"] != b.field {
			t.Errorf("%s: got %d %v, want 400 naming %s", b.query, status, body, b.field)
		}
	}
	if status, _, _ := e.list(t, "", ""); status != 401 {
		t.Errorf("without a key: got %d, want 401", status)
	}
	if status, _, _ := e.list(t, reader, ""); status != 403 {
		t.Errorf("without the admin scope: got %d, want 403", status)
	}
}
