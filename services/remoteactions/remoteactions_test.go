package remoteactions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
	"github.com/dexbridge/dexbridge/services/remoteactions"
)

// TestTriggerAsyncThenSync: wait_seconds 0 answers 202 at once with Location; the
// execution reaches success through the poller; with wait_seconds the answer is 200
// with the final state. Nexthink gets triggerInfo and the params.
func TestTriggerAsyncThenSync(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": "PC-STARTUP",
		"params": map[string]string{"ApplicationNames": "Spotify"}, "wait_seconds": 0, "reason": "Slow PC at startup"}
	status, h, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, http.Header{"X-Request-Id": {"req-async-1"}})
	if status != http.StatusAccepted || str(got, "status") != "pending" {
		t.Fatalf("async: got %d %v, want 202 pending", status, got)
	}
	id := str(got, "id")
	if loc := h.Get("Location"); loc != "/api/v1/remote-actions/executions/"+id {
		t.Errorf("Location: got %q", loc)
	}
	if d := got["device"].(map[string]any); d["name"] != "PC-STARTUP" || d["instance"] != "eu" || d["collector_uid"] == "" {
		t.Errorf("device: got %v", d)
	}
	sent := e.nxsimExecutions(t, str(got, "request_id"))
	if len(sent) != 1 {
		t.Fatalf("nxsim executions: got %d, want 1", len(sent))
	}
	want := nxsimExecution{RequestID: str(got, "request_id"), Device: "PC-STARTUP", RemoteAction: "#disable_application_from_startup_menu",
		Inputs: map[string]string{"ApplicationNames": "Spotify"}, ExternalSource: "dexbridge", ExternalReference: "req-async-1", Reason: "Slow PC at startup"}
	sent[0].Status = ""
	if g, w := fmt.Sprint(sent[0]), fmt.Sprint(want); g != w {
		t.Errorf("nxsim got %s, want %s", g, w)
	}
	testenv.Eventually(t, "the execution to succeed", func() bool {
		_, _, cur := e.do(t, e.a, http.MethodGet, "/api/v1/remote-actions/executions/"+id, nil, nil)
		return str(cur, "status") == "success"
	})
	states, err := e.db.ExecutionStates(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(states); n < 2 || states[0].Status != "pending" || states[n-1].Status != "success" {
		t.Errorf("history: got %+v, want pending ... success", states)
	}

	body["wait_seconds"], body["external_reference"] = 30, "INC0012345"
	start := time.Now()
	status, h, got = e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, nil)
	if status != http.StatusOK || str(got, "status") != "success" || str(got, "status_details") == "" {
		t.Fatalf("sync: got %d %v, want 200 success", status, got)
	}
	if h.Get("Location") == "" || time.Since(start) > 10*time.Second {
		t.Errorf("sync: Location %q, took %s", h.Get("Location"), time.Since(start))
	}
	if sent := e.nxsimExecutions(t, str(got, "request_id")); sent[0].ExternalReference != "INC0012345" {
		t.Errorf("external reference: got %q, want the caller's", sent[0].ExternalReference)
	}
	// The remote action's details were asked once: the second trigger used the cache.
	if n := discoverytest.Counters(t, e.sim, "eu").Endpoints["GET /api/v1/act/remote-action/details"]; n != 1 {
		t.Errorf("details calls: got %d, want 1", n)
	}
}

// TestSyncTriggerTimesOutTo202: an execution that cannot finish within wait_seconds
// on an online device answers 202 once the wait has passed, with the state it
// reached; on a device that is not online, 202 as soon as it waits for the device,
// with the device's last_seen, presence and expiry, however long wait_seconds is.
func TestSyncTriggerTimesOutTo202(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.setExecutions(t, nxsim.ExecutionSettings{PendingMS: 600_000, RunningMS: 100})
	start := time.Now()
	status, h, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#repair_onedrive", "device": "PC-ONEDRIVE", "wait_seconds": 2}, nil)
	took := time.Since(start)
	if status != http.StatusAccepted || str(got, "status") != events.StatusPending || h.Get("Location") == "" || presence(got) != events.PresenceOnline {
		t.Fatalf("got %d %v (Location %q), want 202 pending on an online device", status, got, h.Get("Location"))
	}
	if took < 2*time.Second {
		t.Errorf("answered after %s, before wait_seconds (2 s) had passed", took)
	}

	e.setExecutions(t, nxsim.ExecutionSettings{PendingMS: 50, RunningMS: 100})
	// PC-GPO goes offline after the discovery: the cache still has it online, but the
	// tenant says the execution waits for it.
	e.setOnline(t, false, "PC-GPO")
	for _, tt := range []struct {
		device, presence string
		statuses         []string
	}{
		{"PC-OFFLINE", events.PresenceOffline, []string{events.StatusPending, events.StatusWaitingForDevice}},
		{"PC-GPO", events.PresenceOnline, []string{events.StatusWaitingForDevice}},
	} {
		type answer struct {
			status int
			body   map[string]any
		}
		done := make(chan answer, 1)
		go func() {
			status, _, body := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
				map[string]any{"remote_action": "#update_group_policy_settings", "device": tt.device, "wait_seconds": 120}, nil)
			done <- answer{status, body}
		}()
		select {
		case a := <-done:
			dev, _ := a.body["device"].(map[string]any)
			expires, _ := time.Parse(time.RFC3339, str(a.body, "expires_at"))
			if a.status != http.StatusAccepted || !slices.Contains(tt.statuses, str(a.body, "status")) ||
				presence(a.body) != tt.presence || dev["last_seen"] == nil || !expires.After(time.Now()) {
				t.Errorf("%s: got %d %v, want 202 %v, %s, with its last_seen and expiry", tt.device, a.status, a.body, tt.statuses, tt.presence)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("the trigger on %s waited for the device", tt.device)
		}
	}
}

// presence is the presence of an execution's device.
func presence(ex map[string]any) string {
	dev, _ := ex["device"].(map[string]any)
	p, _ := dev["presence"].(string)
	return p
}

// TestLongPollWakesOnAnotherReplica: the trigger goes through replica A; a long poll
// on replica B returns as soon as the poller publishes the change, not at the end of
// its wait.
func TestLongPollWakesOnAnotherReplica(t *testing.T) {
	e := newEnv(t, envOptions{})
	// The device is online and the execution stays pending until the settings change.
	e.setExecutions(t, nxsim.ExecutionSettings{PendingMS: 600_000, RunningMS: 100})
	_, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#update_group_policy_settings", "device": "PC-GPO"}, nil)
	id := str(got, "id")
	path := "/api/v1/remote-actions/executions/" + id
	testenv.Eventually(t, "the poller's first sight of it", func() bool {
		_, _, cur := e.do(t, e.b, http.MethodGet, path, nil, nil)
		return str(cur, "status") == events.StatusPending && str(cur, "status_details") != ""
	})
	type answer struct {
		status int
		body   map[string]any
		at     time.Time
	}
	done := make(chan answer, 1)
	go func() {
		status, _, body := e.do(t, e.b, http.MethodGet, path+"?wait=60", nil, nil)
		done <- answer{status, body, time.Now()}
	}()
	select {
	case a := <-done:
		t.Fatalf("the long poll returned before any change: %d %v", a.status, a.body)
	case <-time.After(500 * time.Millisecond):
	}
	online := time.Now()
	e.setExecutions(t, nxsim.ExecutionSettings{PendingMS: 50, RunningMS: 100})
	select {
	case a := <-done:
		if a.status != http.StatusOK || str(a.body, "status") == events.StatusPending {
			t.Errorf("got %d %v, want the next state", a.status, a.body)
		}
		if d := a.at.Sub(online); d > 5*time.Second {
			t.Errorf("woke %s after the execution could go on, want within a few poll ticks", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not wake up")
	}
}

// TestRefusals: what dexbridge refuses never reaches the Remote Actions API, and is
// audited with its reason.
func TestRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
		detail string
	}{
		{"not allow-listed", map[string]any{"remote_action": "#restart_device", "device": "PC-HEALTHY"}, 403, "forbidden", "", "allow-list"},
		{"unknown input", map[string]any{"remote_action": "#repair_onedrive", "device": "PC-ONEDRIVE", "params": map[string]string{"Force": "yes"}},
			400, "invalid_request", "params.Force", "no input"},
		{"missing input", map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": "PC-STARTUP"},
			400, "invalid_request", "params.ApplicationNames", "requires"},
		{"wrong platform", map[string]any{"remote_action": "#repair_onedrive", "device": "MAC-HEALTHY"}, 422, "unprocessable", "", "macOS"},
		{"unknown device", map[string]any{"remote_action": "#repair_onedrive", "device": "PC-NOWHERE"}, 404, "not_found", "", "PC-NOWHERE"},
		{"wait too long", map[string]any{"remote_action": "#repair_onedrive", "device": "PC-ONEDRIVE", "wait_seconds": 121}, 400, "invalid_request", "wait_seconds", ""},
		{"bad id", map[string]any{"remote_action": "repair onedrive", "device": "PC-ONEDRIVE"}, 400, "invalid_request", "remote_action", ""},
		{"reason too long", map[string]any{"remote_action": "#repair_onedrive", "device": "PC-ONEDRIVE", "reason": strings.Repeat("x", 501)}, 400, "invalid_request", "reason", ""},
	}
	for _, tt := range tests {
		status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", tt.body, nil)
		if status != tt.status || str(got, "code") != tt.code || str(got, "field") != tt.field || !strings.Contains(str(got, "detail"), tt.detail) {
			t.Errorf("%s: got %d %s field %q %q, want %d %s field %q containing %q", tt.name, status, str(got, "code"),
				str(got, "field"), str(got, "detail"), tt.status, tt.code, tt.field, tt.detail)
		}
	}
	if n := e.executeCalls(t); n != 0 {
		t.Errorf("the Remote Actions API was called %d times, want 0", n)
	}
	// The worker audits what reaches it (the ingress refuses malformed requests itself).
	refused := map[string]string{}
	for _, a := range e.audit(t) {
		if a.Outcome != store.AuditRefused || a.APIKeyID != e.keyID {
			t.Errorf("audit: got outcome %s key %q, want refused by %s", a.Outcome, a.APIKeyID, e.keyID)
		}
		refused[a.Device+" "+a.RemoteAction] = a.Code
	}
	want := map[string]string{"PC-HEALTHY #restart_device": "forbidden", "PC-ONEDRIVE #repair_onedrive": "invalid_request",
		"PC-STARTUP #disable_application_from_startup_menu": "invalid_request", "MAC-HEALTHY #repair_onedrive": "unprocessable",
		"PC-NOWHERE #repair_onedrive": "not_found"}
	if fmt.Sprint(refused) != fmt.Sprint(want) {
		t.Errorf("audited refusals: got %v, want %v", refused, want)
	}
	status, _, _ := e.do(t, e.a, http.MethodGet, "/api/v1/remote-actions/executions/ex_00000000000000000000000000000000", nil, nil)
	if status != http.StatusNotFound {
		t.Errorf("unknown execution: got %d, want 404", status)
	}
	if status, _, _ := e.do(t, e.a, http.MethodGet, "/api/v1/remote-actions/executions/x.%3E", nil, nil); status != http.StatusNotFound {
		t.Errorf("an id that would be a subject wildcard: got %d, want 404", status)
	}
}

// TestAuditRecordsATrigger: who, which device, which action, params, reason, when,
// outcome, and the execution.
func TestAuditRecordsATrigger(t *testing.T) {
	e := newEnv(t, envOptions{})
	before := time.Now().Add(-time.Second)
	_, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": "PC-STARTUP",
			"params": map[string]string{"ApplicationNames": "Spotify"}, "reason": "too slow"}, http.Header{"X-Request-Id": {"req-audit-1"}})
	recs := e.audit(t)
	if len(recs) != 1 {
		t.Fatalf("audit: got %d records, want 1", len(recs))
	}
	a := recs[0]
	if a.APIKeyID != e.keyID || a.HTTPRequestID != "req-audit-1" || a.Device != "PC-STARTUP" || a.RemoteAction != "#disable_application_from_startup_menu" ||
		a.Params["ApplicationNames"] != "Spotify" || a.Reason != "too slow" || a.Outcome != store.AuditTriggered ||
		a.ExecutionID != str(got, "id") || a.Instance != "eu" || a.CollectorUID == "" || a.At.Before(before) || a.DecidedAt == nil {
		t.Errorf("audit: got %+v", a)
	}
}

// TestIdempotencyKey: a retry with the same key returns the same execution, marked
// replayed, and Nexthink is called once; the same key for another request is 422;
// concurrent identical requests, through both replicas, trigger once.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := map[string]any{"remote_action": "#repair_onedrive", "device": "PC-ONEDRIVE", "reason": "OneDrive down"}
	key := http.Header{"Idempotency-Key": {"conv-42-step-3"}}
	s1, h1, first := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, key)
	body["wait_seconds"] = 1 // how long a retry waits is not what it asks for
	s2, h2, again := e.do(t, e.b, http.MethodPost, "/api/v1/remote-actions/executions", body, key)
	if s1/100 != 2 || s2/100 != 2 || str(first, "id") == "" || str(again, "id") != str(first, "id") {
		t.Fatalf("got %d %s and %d %s, want the same execution", s1, str(first, "id"), s2, str(again, "id"))
	}
	if first["replayed"] != nil || h1.Get("Idempotent-Replayed") != "" || again["replayed"] != true || h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed: first %v %q, retry %v %q", first["replayed"], h1.Get("Idempotent-Replayed"), again["replayed"], h2.Get("Idempotent-Replayed"))
	}
	if n := e.executeCalls(t); n != 1 {
		t.Errorf("Remote Actions API calls: got %d, want 1", n)
	}
	body["reason"] = "something else"
	status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, key)
	if status != http.StatusUnprocessableEntity || !strings.Contains(str(got, "detail"), "different request") {
		t.Errorf("reused key: got %d %v, want 422", status, got)
	}
	other := http.Header{"Idempotency-Key": {"conv-42-step-4"}}
	if status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, other); status/100 != 2 || str(got, "id") == str(first, "id") {
		t.Errorf("new key: got %d %v, want a new execution", status, got)
	}

	// Concurrent identical requests.
	const n = 8
	before := e.executeCalls(t)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		base := e.a
		if i%2 == 1 {
			base = e.b
		}
		wg.Go(func() {
			status, _, got := e.do(t, base, http.MethodPost, "/api/v1/remote-actions/executions",
				map[string]any{"remote_action": "#repair_outlook_ost_problem", "device": "PC-OUTLOOK-OFFLINE"}, http.Header{"Idempotency-Key": {"burst-1"}})
			if status/100 == 2 {
				ids[i] = str(got, "id")
			} else {
				ids[i] = fmt.Sprintf("status %d %v", status, got)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !strings.HasPrefix(id, "ex_") {
			t.Fatalf("concurrent: got %v, want one execution", ids)
		}
	}
	if calls := e.executeCalls(t) - before; calls != 1 {
		t.Errorf("concurrent: Remote Actions API calls: got %d, want 1", calls)
	}
	replays := 0
	for _, a := range e.audit(t) {
		if a.Outcome == store.AuditReplayed && a.ExecutionID == ids[0] {
			replays++
		}
	}
	if replays != n-1 {
		t.Errorf("audited replays: got %d, want %d", replays, n-1)
	}
}

// TestUnknownOutcomeKeepsTheKey: a 500 from the Remote Actions API may have run the
// action: the execution ends in failure, and a retry with the same key gets it
// instead of a second trigger. A 400 did not run it: nothing stays.
func TestUnknownOutcomeKeepsTheKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := map[string]any{"remote_action": "#clear_print_queue", "device": "PC-PRINTER"}
	key := http.Header{"Idempotency-Key": {"print-1"}}
	// A first trigger elsewhere caches the action's details: the fault hits the trigger.
	if status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#clear_print_queue", "device": "PC-HEALTHY"}, nil); status != http.StatusAccepted {
		t.Fatalf("warm-up: got %d %v", status, got)
	}
	before := e.executeCalls(t)
	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{FailNext: 1, FailStatus: 500, Groups: []string{"act"}})
	status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, key)
	if status != http.StatusServiceUnavailable || !strings.Contains(str(got, "detail"), "ex_") {
		t.Fatalf("got %d %v, want 503 naming the execution", status, got)
	}
	status, _, again := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions", body, key)
	if status != http.StatusOK || str(again, "status") != "failure" || !strings.Contains(str(again, "status_details"), "unknown") || again["replayed"] != true {
		t.Errorf("retry: got %d %v, want 200 the failed execution, replayed", status, again)
	}
	if n := e.executeCalls(t) - before; n != 1 {
		t.Errorf("Remote Actions API calls: got %d, want 1", n)
	}
	var outcomes []string
	for _, a := range e.audit(t) {
		outcomes = append(outcomes, a.Outcome+":"+a.Code)
	}
	if got, want := fmt.Sprint(outcomes), "[replayed: failed:upstream_unavailable triggered:]"; got != want {
		t.Errorf("audit: got %s, want %s", got, want)
	}
}

// TestTopicRemediation runs a topic's remediation with the params of the latest
// diagnosis of that topic on that device; without one it asks for a diagnosis.
func TestTopicRemediation(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev, err := e.db.DevicesByKey(ctx, store.ByDeviceName, "PC-STARTUP", 1)
	if err != nil || len(dev) != 1 {
		t.Fatal(dev, err)
	}
	save := func(id string, age time.Duration, rems ...events.SuggestedRemedy) {
		body, _ := json.Marshal(events.Diagnosis{ID: id, Topic: "slow_pc", Remediations: rems})
		if err := e.db.SaveDiagnosis(ctx, store.Diagnosis{ID: id, Topic: "slow_pc", CollectorUID: dev[0].CollectorUID, Instance: "eu",
			DeviceName: "PC-STARTUP", DiagnosedAt: time.Now().Add(-age), Source: "live", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	path := "/api/v1/topics/slow_pc/remediations/disable_startup_apps"
	req := map[string]any{"device": "PC-STARTUP", "wait_seconds": 30, "reason": "slow at startup"}

	status, _, got := e.do(t, e.a, http.MethodPost, path, req, nil)
	if status != http.StatusConflict || !strings.Contains(str(got, "detail"), "diagnose first") {
		t.Errorf("no diagnosis: got %d %v, want 409 asking for one", status, got)
	}
	save("dg_old", 2*time.Hour, events.SuggestedRemedy{ID: "disable_startup_apps", RemoteAction: "#disable_application_from_startup_menu",
		Params: map[string]string{"ApplicationNames": "Old"}, Ready: true})
	if status, _, _ := e.do(t, e.a, http.MethodPost, path, req, nil); status != http.StatusConflict {
		t.Errorf("a diagnosis older than an hour: got %d, want 409", status)
	}
	save("dg_notready", 2*time.Minute, events.SuggestedRemedy{ID: "disable_startup_apps", RemoteAction: "#disable_application_from_startup_menu",
		Ready: false, NotReady: "ApplicationNames: no value for HighImpactApplications"})
	status, _, got = e.do(t, e.a, http.MethodPost, path, req, nil)
	if status != http.StatusConflict || !strings.Contains(str(got, "detail"), "no value for HighImpactApplications") {
		t.Errorf("not ready: got %d %v, want 409 with the reason", status, got)
	}
	save("dg_ready", time.Minute, events.SuggestedRemedy{ID: "disable_startup_apps", RemoteAction: "#disable_application_from_startup_menu",
		Params: map[string]string{"ApplicationNames": "Spotify,Teams Machine-Wide Installer"}, Ready: true})
	status, _, got = e.do(t, e.a, http.MethodPost, path, req, nil)
	if status != http.StatusOK || str(got, "status") != "success" || str(got, "topic") != "slow_pc" || str(got, "remediation") != "disable_startup_apps" {
		t.Fatalf("ready: got %d %v, want 200 success", status, got)
	}
	sent := e.nxsimExecutions(t, str(got, "request_id"))
	if len(sent) != 1 || sent[0].Inputs["ApplicationNames"] != "Spotify,Teams Machine-Wide Installer" || sent[0].Reason != "slow at startup" {
		t.Errorf("nxsim got %+v, want the diagnosis's params", sent)
	}

	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/api/v1/topics/slow_pc/remediations/restart_device", http.StatusUnprocessableEntity}, // a message
		{"/api/v1/topics/nope/remediations/disk_cleanup", http.StatusNotFound},
		{"/api/v1/topics/slow_pc/remediations/nope", http.StatusNotFound},
		{"/api/v1/topics/slow_pc/remediations/disk_cleanup", http.StatusOK}, // no params: not suggested, still runs
	} {
		if status, _, got := e.do(t, e.a, http.MethodPost, tt.path, req, nil); status != tt.status {
			t.Errorf("%s: got %d %v, want %d", tt.path, status, got, tt.status)
		}
	}
}

// TestListRemoteActions: the allow-list, for read keys.
func TestListRemoteActions(t *testing.T) {
	e := newEnv(t, envOptions{noPoller: true})
	status, _, got := e.do(t, e.a, http.MethodGet, "/api/v1/remote-actions", nil, nil)
	list, _ := got["remote_actions"].([]any)
	if status != http.StatusOK || len(list) < 10 {
		t.Fatalf("got %d %d actions", status, len(list))
	}
	for _, v := range list {
		a := v.(map[string]any)
		if a["id"] == "#disable_application_from_startup_menu" {
			in := a["inputs"].([]any)[0].(map[string]any)
			if in["name"] != "ApplicationNames" || in["required"] != true {
				t.Errorf("inputs: got %v", in)
			}
			return
		}
	}
	t.Error("#disable_application_from_startup_menu is not listed")
}

// TestParamsFallBackToTheAllowList: when the tenant cannot give a remote action's
// details, the allow-list's declaration is the check.
func TestParamsFallBackToTheAllowList(t *testing.T) {
	e := newEnv(t, envOptions{noPoller: true, manager: func(o *remoteactions.Options) { o.DetailsTTL = time.Millisecond }})
	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{}, ErrorRate: 1, ErrorStatus: 503, Groups: []string{"act"}})
	status, _, got := e.do(t, e.a, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": "PC-STARTUP"}, nil)
	if status != http.StatusBadRequest || str(got, "field") != "params.ApplicationNames" {
		t.Errorf("got %d %v, want 400 from the allow-list's declaration", status, got)
	}
}
