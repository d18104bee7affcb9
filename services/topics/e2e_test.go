package topics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestSeedUseCasesEndToEnd: through the REST API, against nxsim after a discovery,
// each scenario device of each seed use case gets exactly the findings and the
// remediations the seed's remediation list prescribes, and the healthy control gets
// none (the generic remediations aside). Every diagnosis is recorded.
func TestSeedUseCasesEndToEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		topic, device string
		findings      []string          // rules found
		remediations  []string          // remediations of the findings, generic ones aside
		params        map[string]string // params of the remediations, when they have some
	}{
		// Outlook: seed items 1 to 4; item 5 is generic.
		{topic: "outlook", device: "PC-OUTLOOK-OFFLINE", findings: []string{"outlook_offline"}, remediations: []string{"set_outlook_online"}},
		{topic: "outlook", device: "PC-OUTLOOK-PLUGIN", findings: []string{"outlook_plugin_crashed"}, remediations: []string{"set_outlook_plugins"}},
		{topic: "outlook", device: "PC-OFFICE-OUTDATED", findings: []string{"office_outdated"}, remediations: []string{"repair_office_365"}},
		{topic: "outlook", device: "PC-UPTIME", findings: []string{"restart_overdue"}, remediations: []string{"restart_device"}},
		{topic: "outlook", device: "PC-HEALTHY"},
		// OneDrive: its one item.
		{topic: "onedrive", device: "PC-ONEDRIVE", findings: []string{"onedrive_not_working"}, remediations: []string{"repair_onedrive"}},
		{topic: "onedrive", device: "PC-HEALTHY"},
		// Slow PC: items 1 to 5.
		{topic: "slow_pc", device: "PC-LOW-DISK", findings: []string{"low_disk_space"}, remediations: []string{"disk_cleanup"}},
		{topic: "slow_pc", device: "PC-STARTUP", findings: []string{"high_impact_startup_apps"}, remediations: []string{"disable_startup_apps"},
			params: map[string]string{"ApplicationNames": "Spotify,Teams Machine-Wide Installer"}},
		{topic: "slow_pc", device: "PC-GPO", findings: []string{"slow_group_policy"}, remediations: []string{"update_group_policy_settings"}},
		{topic: "slow_pc", device: "PC-UPTIME", findings: []string{"restart_overdue"}, remediations: []string{"restart_device"}},
		{topic: "slow_pc", device: "PC-OFFICE-OUTDATED", findings: []string{"office_outdated"}, remediations: []string{"repair_office_365"}},
		{topic: "slow_pc", device: "PC-HEALTHY"},
	}
	for _, tt := range tests {
		t.Run(tt.topic+"/"+tt.device, func(t *testing.T) {
			code, d, p := e.diagnose(tt.topic, tt.device, false)
			if code != http.StatusOK {
				t.Fatalf("got %d %v, want 200", code, p)
			}
			var found []string
			for _, f := range d.Findings {
				found = append(found, f.Rule)
				if len(f.Evidence) == 0 {
					t.Errorf("finding %s has no evidence", f.Rule)
				}
			}
			if !slices.Equal(found, tt.findings) {
				t.Errorf("findings: got %v, want %v", found, tt.findings)
			}
			var rems []string
			for _, r := range d.Remediations {
				if r.Generic {
					continue
				}
				rems = append(rems, r.ID)
				if !r.Ready {
					t.Errorf("remediation %s not ready: %s", r.ID, r.NotReady)
				}
				if tt.params != nil && !mapsEqual(r.Params, tt.params) {
					t.Errorf("remediation %s params: got %v, want %v", r.ID, r.Params, tt.params)
				}
			}
			if !slices.Equal(rems, tt.remediations) {
				t.Errorf("remediations: got %v, want %v", rems, tt.remediations)
			}
			for _, r := range d.Rules {
				if r.Status == "not_evaluated" {
					t.Errorf("rule %s not evaluated: %s", r.Rule, r.Reason)
				}
			}
			if d.Topic != tt.topic || d.Device.Name != tt.device || d.Device.Instance != "eu" || d.Device.CollectorUID == "" {
				t.Errorf("got topic %s device %+v", d.Topic, d.Device)
			}
			// These topics read remote-action outputs or events: they always go live. The
			// data is as old as the device's last collection (hours), not the query.
			if d.Source != "live" || d.DataAsOf == nil || d.Device.LastSeen == nil || d.DataAsOf.After(*d.Device.LastSeen) ||
				d.Stale || d.Device.Presence != events.PresenceOnline || d.Timing["total"] < d.Timing["queries"] {
				t.Errorf("got source %s data as of %v, last seen %v (%s), stale %v, timing %v; want live, dated no later than last_seen, fresh, online",
					d.Source, d.DataAsOf, d.Device.LastSeen, d.Device.Presence, d.Stale, d.Timing)
			}
			want := events.VerdictHealthy
			if len(tt.findings) > 0 {
				want = events.VerdictProblemsFound
			}
			if d.Verdict != want || len(d.VerdictReasons) != 0 {
				t.Errorf("verdict: got %s %+v, want %s", d.Verdict, d.VerdictReasons, want)
			}
			saved, err := e.db.LatestDiagnosis(context.Background(), tt.topic, d.Device.CollectorUID, "eu", time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatalf("recorded diagnosis: %v", err)
			}
			var body events.Diagnosis
			if err := json.Unmarshal(saved.Body, &body); err != nil || saved.ID != d.ID || body.ID != d.ID || len(body.Findings) != len(d.Findings) {
				t.Errorf("recorded diagnosis: got %s %+v (%v), want %s", saved.ID, body, err, d.ID)
			}
		})
	}
	// The generic remediation of the Outlook topic is offered, marked generic: not
	// ready on a healthy device, ready where a problem was found.
	_, d, _ := e.diagnose("outlook", "PC-HEALTHY", false)
	if n := len(d.Remediations); n != 1 || !d.Remediations[0].Generic || d.Remediations[0].RemoteAction != "#repair_outlook_ost_problem" ||
		d.Remediations[0].Ready || d.Remediations[0].NotReady == "" {
		t.Errorf("healthy Outlook: got remediations %+v, want only the generic Repair Outlook OST Problem, not ready", d.Remediations)
	}
	_, d, _ = e.diagnose("outlook", "PC-OUTLOOK-PLUGIN", false)
	if i := slices.IndexFunc(d.Remediations, func(r events.SuggestedRemedy) bool { return r.Generic }); i < 0 || !d.Remediations[i].Ready {
		t.Errorf("Outlook with a crashed add-in: got remediations %+v, want the generic one ready", d.Remediations)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCachedTopicAsksNothingOfTheTenant: the first-line checklist reads only inventory
// fields, so it is answered from the cache, dated by the device's last_seen as the
// discovery read it, and nxsim sees no NQL call; the live topics make one per query.
func TestCachedTopicAsksNothingOfTheTenant(t *testing.T) {
	e := newEnv(t, envOptions{})
	asOf := e.discoveredAt("eu")
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	for _, device := range []string{"PC-HEALTHY", "MAC-HEALTHY", "PC-UPTIME"} {
		code, d, p := e.diagnose("l1_device_checklist", device, false)
		if code != http.StatusOK {
			t.Fatalf("%s: got %d %v", device, code, p)
		}
		seen, _ := time.Parse(time.RFC3339, d.Fields["device.last_seen"].(string))
		if d.Source != "cache" || d.DataAsOf == nil || !d.DataAsOf.Equal(seen) || d.DataAsOf.After(asOf) ||
			d.Device.LastSeen == nil || !d.Device.LastSeen.Equal(seen) {
			t.Errorf("%s: got source %s as of %v, last seen %v; want cache as of the cached last_seen %s, before the discovery %s",
				device, d.Source, d.DataAsOf, d.Device.LastSeen, seen, asOf)
		}
		var found []string
		for _, f := range d.Findings {
			found = append(found, f.Rule)
		}
		want := []string(nil)
		if device == "PC-UPTIME" {
			want = []string{"restart_overdue"}
		}
		if !slices.Equal(found, want) {
			t.Errorf("%s: findings got %v, want %v", device, found, want)
		}
		if d.Fields["device.name"] != device || d.Fields["device.hardware.memory"] == nil {
			t.Errorf("%s: fields got %v", device, d.Fields)
		}
	}
	if n := e.nqlCalls("eu"); n != 0 {
		t.Errorf("NQL calls at the tenant for cached diagnoses: got %d, want 0", n)
	}
	if code, d, _ := e.diagnose("outlook", "PC-HEALTHY", false); code != 200 || d.Source != "live" {
		t.Errorf("outlook: got %d from %s, want 200 live", code, d.Source)
	}
	if n := e.nqlCalls("eu"); n != 1 {
		t.Errorf("NQL calls after one live diagnosis: got %d, want 1", n)
	}
}

// TestUncachedDeviceResolvesLive: a device the cache does not have is found on the
// instances (the live identification query, once), and its diagnosis runs live on
// the instance that knows it.
func TestUncachedDeviceResolvesLive(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.db.Pool().Exec(context.Background(), `DELETE FROM devices WHERE name = 'PC-UPTIME'`); err != nil {
		t.Fatal(err)
	}
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	code, d, p := e.diagnose("l1_device_checklist", "PC-UPTIME", false)
	if code != http.StatusOK || d.Source != "live" || d.Device.Instance != "eu" || d.Device.CollectorUID == "" {
		t.Fatalf("got %d %v %+v, want 200 live on eu", code, p, d.Device)
	}
	if len(d.Findings) != 1 || d.Findings[0].Rule != "restart_overdue" {
		t.Errorf("findings: got %+v, want restart_overdue", d.Findings)
	}
	if n := discoverytest.Counters(t, e.sim, "eu").Queries["#get_device_basic_infos_by_device_name"]; n != 1 {
		t.Errorf("live identification asked %d times, want once", n)
	}
}

// TestUnknownDeviceAnsweredFromMemory: a device name the tenants did not know a
// moment ago, whether identification or a diagnosis asked them, is not asked again
// within cache.unknown_identifier_ttl: the diagnosis answers 404 at once.
func TestUnknownDeviceAnsweredFromMemory(t *testing.T) {
	e := newEnv(t, envOptions{})
	const query = "#get_device_basic_infos_by_device_name"
	asked := func() int64 {
		return discoverytest.Counters(t, e.sim, "eu").Queries[query] + discoverytest.Counters(t, e.sim, "us").Queries[query]
	}
	// Identification asks first; the diagnosis then asks nobody.
	var a events.DevicesIdentifyReply
	if resp := e.do(http.MethodGet, "/api/v1/devices?device_name=NO-SUCH-PC-515", e.key, "", &a); resp.StatusCode != 200 || len(a.Devices) != 0 {
		t.Fatalf("identify: got %d %+v, want 200 without devices", resp.StatusCode, a)
	}
	before := asked()
	if before != 2 {
		t.Errorf("identify asked %d tenants, want both", before)
	}
	for _, device := range []string{"NO-SUCH-PC-515", "no-such-pc-515"} {
		if code, _, p := e.diagnose("printing", device, false); code != http.StatusNotFound {
			t.Errorf("diagnosis of %s: got %d %v, want 404", device, code, p)
		}
	}
	if got := asked(); got != before {
		t.Errorf("diagnoses after identification asked the tenants %d times, want none", got-before)
	}
	// A diagnosis asks first; the next diagnosis and identification ask nobody.
	if code, _, p := e.diagnose("printing", "NO-SUCH-PC-516", false); code != http.StatusNotFound {
		t.Errorf("first diagnosis: got %d %v, want 404", code, p)
	}
	before = asked()
	if code, _, p := e.diagnose("outlook", "NO-SUCH-PC-516", false); code != http.StatusNotFound {
		t.Errorf("second diagnosis: got %d %v, want 404", code, p)
	}
	if resp := e.do(http.MethodGet, "/api/v1/devices?device_name=NO-SUCH-PC-516", e.key, "", &a); resp.StatusCode != 200 || len(a.Devices) != 0 {
		t.Errorf("identify after the diagnosis: got %d %+v", resp.StatusCode, a)
	}
	if got := asked(); got != before {
		t.Errorf("a diagnosis and identification after a diagnosis asked the tenants %d times, want none", got-before)
	}
}

// TestDiagnosisRefusals: an unknown topic or device is 404 and says which; a topic
// for another platform is 422 saying so; a malformed request is 400; a key without
// the diagnose scope is 403. None reaches the tenant's NQL API.
func TestDiagnosisRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	tests := []struct {
		name, topic, body, key string
		status                 int
		code, field, detail    string
	}{
		{name: "unknown topic", topic: "nope", body: `{"device":"PC-HEALTHY"}`, status: 404, code: "not_found", detail: `no topic "nope"`},
		{name: "unknown device", topic: "outlook", body: `{"device":"PC-NOWHERE"}`, status: 404, code: "not_found",
			detail: `no device "PC-NOWHERE": the cache does not have it and no Nexthink instance knows it`},
		{name: "wrong platform", topic: "outlook", body: `{"device":"MAC-HEALTHY"}`, status: 422, code: "unprocessable",
			detail: "topic outlook applies to Windows devices; MAC-HEALTHY is a macOS device"},
		{name: "no device", topic: "outlook", body: `{}`, status: 400, code: "invalid_request", field: "device"},
		{name: "wildcard device", topic: "outlook", body: `{"device":"PC-*"}`, status: 400, code: "invalid_request", field: "device"},
		{name: "unknown field", topic: "outlook", body: `{"device":"PC-HEALTHY","force":true}`, status: 400, code: "invalid_request", field: "force"},
		{name: "bad topic id", topic: "Outlook!", body: `{"device":"PC-HEALTHY"}`, status: 400, code: "invalid_request", field: "topic"},
		{name: "read scope only", topic: "outlook", body: `{"device":"PC-HEALTHY"}`, key: e.newKey("reader", "read"), status: 403, code: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = e.key
			}
			var p map[string]any
			resp := e.do(http.MethodPost, "/api/v1/topics/"+tt.topic+"/diagnosis", key, tt.body, &p)
			if resp.StatusCode != tt.status || p["code"] != tt.code || (tt.field != "" && p["field"] != tt.field) ||
				!strings.Contains(p["detail"].(string), tt.detail) {
				t.Errorf("got %d %v, want %d %s field %q detail with %q", resp.StatusCode, p, tt.status, tt.code, tt.field, tt.detail)
			}
		})
	}
	c := discoverytest.Counters(t, e.sim, "eu")
	for q, n := range c.Queries {
		if strings.HasPrefix(q, "#diagnose") && n > 0 {
			t.Errorf("a refused diagnosis ran %s %d times", q, n)
		}
	}
}

// TestTenantDownAndBusy: with nxsim down, a topic that must ask it answers 503 with
// Retry-After, while the cached topic still answers from the cache; with the NQL
// limit spent, the next live diagnosis is 429 with Retry-After.
func TestTenantDownAndBusy(t *testing.T) {
	e := newEnv(t, envOptions{nqlLimit: 0.2})
	if code, _, p := e.diagnose("outlook", "PC-HEALTHY", false); code != 200 {
		t.Fatalf("first diagnosis: got %d %v", code, p)
	}
	code, _, p := e.diagnose("slow_pc", "PC-HEALTHY", false)
	if code != 429 || p["code"] != "rate_limited" || p["retry_after_header"] == "" || !strings.Contains(p["detail"].(string), "instance eu is busy") {
		t.Errorf("over the NQL limit: got %d %v, want 429 with Retry-After", code, p)
	}

	e2 := newEnv(t, envOptions{})
	discoverytest.SetFaults(t, e2.sim, "eu", nxsim.Faults{Down: "503"})
	code, _, p = e2.diagnose("outlook", "PC-OUTLOOK-PLUGIN", false)
	if code != 503 || p["code"] != "upstream_unavailable" || p["retry_after_header"] == "" || !strings.Contains(p["detail"].(string), "instance eu is unavailable") {
		t.Errorf("tenant down: got %d %v, want 503 upstream_unavailable with Retry-After", code, p)
	}
	code, d, p := e2.diagnose("l1_device_checklist", "PC-HEALTHY", false)
	if code != 200 || d.Source != "cache" {
		t.Errorf("cached topic with the tenant down: got %d %v %s, want 200 from the cache", code, p, d.Source)
	}
}

type nqlAnswer struct {
	QueryID  string           `json:"query_id"`
	Headers  []string         `json:"headers"`
	Rows     []map[string]any `json:"rows"`
	Source   string           `json:"source"`
	Instance string           `json:"instance"`
	DataAsOf *time.Time       `json:"data_as_of"`
}

// TestNQLWrapperEndpoint: POST /api/v1/nql/{query_id} answers a device-only query
// from the cache and any other live, takes parameters only as parameters, needs an
// instance for a query that selects no device, and refuses unknown queries and
// missing parameters naming them.
func TestNQLWrapperEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{})
	asOf := e.discoveredAt("eu")
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)

	var a nqlAnswer
	resp := e.do(http.MethodPost, "/api/v1/nql/%23l1_device_checklist", e.key, `{"parameters":{"device_name":"pc-healthy"}}`, &a)
	if resp.StatusCode != 200 || a.Source != "cache" || a.Instance != "eu" || a.DataAsOf == nil || !a.DataAsOf.Equal(asOf) ||
		len(a.Rows) != 1 || a.Rows[0]["device.name"] != "PC-HEALTHY" || a.QueryID != "#l1_device_checklist" {
		t.Errorf("cached query: got %d %+v, want one row from the cache as of %s", resp.StatusCode, a, asOf)
	}
	if n := e.nqlCalls("eu"); n != 0 {
		t.Errorf("cached query: %d NQL calls at the tenant, want 0", n)
	}
	resp = e.do(http.MethodPost, "/api/v1/nql/diagnose_outlook_issues", e.key, `{"parameters":{"device_name":"PC-OUTLOOK-OFFLINE"}}`, &a)
	if resp.StatusCode != 200 || a.Source != "live" || len(a.Rows) != 1 ||
		a.Rows[0]["remote_action.get_outlook_online_windows.execution.outputs.IsOnline"] != "No" {
		t.Errorf("live query (id without #): got %d %+v", resp.StatusCode, a)
	}

	// A parameter is a value, never query text: an injection attempt matches nothing.
	var p map[string]any
	resp = e.do(http.MethodPost, "/api/v1/nql/%23l1_device_checklist", e.key, `{"parameters":{"device_name":"x\" or device.name == \"PC-HEALTHY"}}`, &p)
	if resp.StatusCode != 404 || p["code"] != "not_found" {
		t.Errorf("injection attempt: got %d %v, want 404 (no such device)", resp.StatusCode, p)
	}

	// #get_remote_action_result selects no device: with two instances it needs one.
	resp = e.do(http.MethodPost, "/api/v1/nql/%23get_remote_action_result", e.key, `{"parameters":{"request_id":"nope"}}`, &p)
	if resp.StatusCode != 400 || p["field"] != "instance" {
		t.Errorf("no instance: got %d %v, want 400 naming instance", resp.StatusCode, p)
	}
	resp = e.do(http.MethodPost, "/api/v1/nql/%23get_remote_action_result", e.key, `{"parameters":{"request_id":"nope"},"instance":"us"}`, &a)
	if resp.StatusCode != 200 || a.Source != "live" || a.Instance != "us" || len(a.Rows) != 0 {
		t.Errorf("instance us: got %d %+v, want no rows, live from us", resp.StatusCode, a)
	}

	refusals := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"unknown query", "/api/v1/nql/%23no_such_query", `{}`, 404, "not_found", ""},
		{"bad query id", "/api/v1/nql/%23No-Such", `{}`, 400, "invalid_request", "query_id"},
		{"missing parameter", "/api/v1/nql/%23l1_device_checklist", `{"parameters":{}}`, 400, "invalid_request", "parameters.device_name"},
		{"no body", "/api/v1/nql/%23l1_device_checklist", ``, 400, "invalid_request", "parameters.device_name"},
		{"unknown parameter", "/api/v1/nql/%23l1_device_checklist", `{"parameters":{"device_name":"PC-HEALTHY","limit":"5"}}`, 400, "invalid_request", "parameters.limit"},
		{"number parameter", "/api/v1/nql/%23l1_device_checklist", `{"parameters":{"device_name":5}}`, 400, "invalid_request", "parameters"},
		{"unknown instance", "/api/v1/nql/%23get_remote_action_result", `{"parameters":{"request_id":"x"},"instance":"ap"}`, 400, "invalid_request", "instance"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			var p map[string]any
			resp := e.do(http.MethodPost, tt.path, e.key, tt.body, &p)
			if resp.StatusCode != tt.status || p["code"] != tt.code || (tt.field != "" && p["field"] != tt.field) {
				t.Errorf("got %d %v, want %d %s naming %q", resp.StatusCode, p, tt.status, tt.code, tt.field)
			}
		})
	}
}
