package remoteactions_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// page is one answer of the execution list.
type page struct {
	ids    []string
	cursor string // "" when next_cursor is null
	items  []map[string]any
}

func (e *env) list(t *testing.T, base string, q url.Values) page {
	t.Helper()
	status, _, got := e.do(t, base, http.MethodGet, executionsPath+"?"+q.Encode(), nil, nil)
	if status != http.StatusOK {
		t.Fatalf("list %s: got %d %v", q.Encode(), status, got)
	}
	var p page
	for _, v := range got["executions"].([]any) {
		m := v.(map[string]any)
		p.items = append(p.items, m)
		p.ids = append(p.ids, str(m, "id"))
	}
	if c, ok := got["next_cursor"].(string); ok {
		p.cursor = c
	} else if got["next_cursor"] != nil {
		t.Fatalf("next_cursor: got %v, want a string or null", got["next_cursor"])
	}
	return p
}

// TestListExecutions: the filters, newest first; pages through both replicas that
// neither repeat nor skip an execution while new ones are triggered; cursors that
// were altered or belong to another query are refused; bad parameters are 400s
// naming them.
func TestListExecutions(t *testing.T) {
	e := newEnv(t, envOptions{twoReplicas: true})
	devs := e.sample(t, nxsim.Sample{N: 2, Seed: 2026, Platform: "Windows", Presence: "online"})
	offline := e.sample(t, nxsim.Sample{N: 1, Seed: 2026, Platform: "Windows", Presence: "offline"})[0]
	trigger := func(action, device string) string {
		t.Helper()
		status, _, got := e.do(t, e.a, http.MethodPost, executionsPath, map[string]any{"remote_action": action, "device": device, "force": true}, nil)
		if status/100 != 2 {
			t.Fatalf("trigger %s on %s: got %d %v", action, device, status, got)
		}
		return str(got, "id")
	}
	var d0, d1 []string
	for range 3 {
		d0 = append(d0, trigger("#repair_onedrive", devs[0].Name))
	}
	d1 = append(d1, trigger("#update_group_policy_settings", devs[1].Name))
	mid := time.Now().UTC()
	d1 = append(d1, trigger("#update_group_policy_settings", devs[1].Name), trigger("#repair_onedrive", devs[1].Name))
	waiting := trigger("#repair_onedrive", offline.Name)
	for _, id := range slices.Concat(d0, d1) {
		testenv.Eventually(t, id+" to finish", func() bool { return str(e.execution(t, id), "status") == events.StatusSuccess })
	}
	testenv.Eventually(t, "waiting_for_device", func() bool { return str(e.execution(t, waiting), "status") == events.StatusWaitingForDevice })

	all := e.list(t, e.a, url.Values{"limit": {"200"}})
	if len(all.ids) != 7 || all.cursor != "" || all.ids[0] != waiting {
		t.Fatalf("all: got %v (cursor %q), want 7, newest first, no next page", all.ids, all.cursor)
	}
	for i := 1; i < len(all.items); i++ {
		if str(all.items[i-1], "created_at") < str(all.items[i], "created_at") {
			t.Errorf("not newest first: %v", all.ids)
		}
	}
	reversed := func(ids []string) []string { out := slices.Clone(ids); slices.Reverse(out); return out }
	for _, tt := range []struct {
		name string
		q    url.Values
		want []string
	}{
		{"device name", url.Values{"device": {strings.ToLower(devs[0].Name)}}, reversed(d0)},
		{"collector uid", url.Values{"device": {strings.ToUpper(devs[1].CollectorUID)}}, reversed(d1)},
		{"status", url.Values{"status": {"waiting_for_device"}}, []string{waiting}},
		{"statuses", url.Values{"status": {"waiting_for_device,success"}, "device": {offline.Name}}, []string{waiting}},
		{"repeated status", url.Values{"status": {"failure", "waiting_for_device"}}, []string{waiting}},
		{"since", url.Values{"since": {mid.Format(time.RFC3339Nano)}, "remote_action": {"#update_group_policy_settings"}}, d1[1:2]},
		{"remote action", url.Values{"remote_action": {"#update_group_policy_settings"}}, reversed(d1[:2])},
		{"nothing", url.Values{"device": {"PC-NOWHERE"}}, nil},
	} {
		if got := e.list(t, e.b, tt.q); !slices.Equal(got.ids, tt.want) || got.cursor != "" {
			t.Errorf("%s: got %v (cursor %q), want %v", tt.name, got.ids, got.cursor, tt.want)
		}
	}

	// Two at a time, alternating replicas (one signs, the other checks), while a new
	// execution arrives before each page: each one that existed is seen once, in order.
	var seen, arrived []string
	q := url.Values{"limit": {"2"}}
	for range 10 {
		arrived = append(arrived, trigger("#disk_cleanup", devs[0].Name))
		base := e.a
		if len(seen)%4 == 2 {
			base = e.b
		}
		p := e.list(t, base, q)
		seen = append(seen, p.ids...)
		if p.cursor == "" {
			break
		}
		q.Set("cursor", p.cursor)
	}
	if want := append([]string{arrived[0]}, all.ids...); !slices.Equal(seen, want) {
		t.Errorf("pages: got %v, want %v", seen, want)
	}

	// Cursors: another query's, an altered one, and another page size (allowed).
	p := e.list(t, e.a, url.Values{"device": {devs[0].Name}, "limit": {"1"}})
	if p.cursor == "" {
		t.Fatal("no cursor after a page of one")
	}
	altered := []byte(p.cursor)
	altered[len(altered)/2] ^= 0x01
	// A forger who knows the layout but not the key: version, time, id, a made-up MAC.
	raw := binary.BigEndian.AppendUint64([]byte{1}, uint64(time.Now().UnixMicro()))
	raw = append(raw, make([]byte, 32)...)
	forged := base64.RawURLEncoding.EncodeToString(raw)
	for name, q := range map[string]url.Values{
		"another device": {"device": {devs[1].Name}, "cursor": {p.cursor}},
		"another status": {"device": {devs[0].Name}, "status": {"success"}, "cursor": {p.cursor}},
		"no filter":      {"cursor": {p.cursor}},
		"altered":        {"device": {devs[0].Name}, "cursor": {string(altered)}},
		"forged":         {"device": {devs[0].Name}, "cursor": {forged}},
		"not a cursor":   {"cursor": {"!!"}},
		"empty":          {"cursor": {""}},
	} {
		status, _, got := e.do(t, e.b, http.MethodGet, executionsPath+"?"+q.Encode(), nil, nil)
		if status != http.StatusBadRequest || str(got, "field") != "cursor" || str(got, "code") != "invalid_request" {
			t.Errorf("%s cursor: got %d %v, want 400 naming cursor", name, status, got)
		}
	}
	if got := e.list(t, e.b, url.Values{"device": {devs[0].Name}, "limit": {"50"}, "cursor": {p.cursor}}); len(got.ids) == 0 {
		t.Error("the same query with another page size: no executions")
	}

	for _, tt := range []struct{ query, field string }{
		{"status=bogus", "status"}, {"status=pending,", "status"}, {"status=", "status"},
		{"since=yesterday", "since"}, {"since=2026-13-01T00:00:00Z", "since"}, {"since=2026-05-04", "since"},
		{"device=PC*", "device"}, {"device=", "device"}, {"device=a&device=b", "device"},
		{"limit=0", "limit"}, {"limit=201", "limit"}, {"limit=ten", "limit"},
		{"remote_action=repair_onedrive", "remote_action"}, {"colour=blue", "colour"},
		{"cursor=" + strings.Repeat("A", 129), "cursor"},
	} {
		status, _, got := e.do(t, e.a, http.MethodGet, executionsPath+"?"+tt.query, nil, nil)
		if status != http.StatusBadRequest || str(got, "field") != tt.field {
			t.Errorf("%s: got %d %v, want 400 naming %s", tt.query, status, got, tt.field)
		}
	}

	// The list needs the remediate scope.
	readOnly, _, err := auth.NewKeys(e.db).Create(context.Background(), auth.NewKey{Name: "reader", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.a+executionsPath, nil)
	req.Header.Set("X-API-Key", readOnly)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("read scope: got %d, want 403", resp.StatusCode)
	}
}
