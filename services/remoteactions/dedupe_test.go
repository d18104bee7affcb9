package remoteactions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

const executionsPath = "/api/v1/remote-actions/executions"

// sample draws n fleet devices of tenant eu, reproducibly for seed.
func (e *env) sample(t *testing.T, s nxsim.Sample) []nxsim.SampledDevice {
	t.Helper()
	devs, err := nxsim.NewControlClient(e.sim.TenantURL("eu"), nil).SampleDevices(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) < s.N {
		t.Fatalf("sample %+v: got %d devices", s, len(devs))
	}
	return devs
}

// execution reads an execution through ingress A.
func (e *env) execution(t *testing.T, id string) map[string]any {
	t.Helper()
	status, _, got := e.do(t, e.a, http.MethodGet, executionsPath+"/"+id, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("execution %s: got %d %v", id, status, got)
	}
	return got
}

// TestNoDuplicateFix: identical triggers at once, through two remote action managers,
// run the action once; the others, and every later identical trigger while it waits
// for the offline device, get that execution (200, existing). Other params, force and
// a final execution do not block a new one; a key given with a duplicate replays it.
func TestNoDuplicateFix(t *testing.T) {
	e := newEnv(t, envOptions{twoReplicas: true})
	dev := e.sample(t, nxsim.Sample{N: 1, Seed: 1244, Platform: "Windows", Presence: "offline"})[0]
	body := map[string]any{"remote_action": "#repair_onedrive", "device": dev.Name, "reason": "OneDrive is stuck"}

	const n = 10
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, n)
	before := e.executeCalls(t)
	var wg sync.WaitGroup
	for i := range n {
		base := e.a
		if i%2 == 1 {
			base = e.b
		}
		wg.Go(func() {
			status, _, got := e.do(t, base, http.MethodPost, executionsPath, body, nil)
			answers[i] = answer{status, got}
		})
	}
	wg.Wait()
	first := ""
	created := 0
	for _, a := range answers {
		id := str(a.body, "id")
		switch {
		case a.status == http.StatusAccepted && a.body["existing"] == nil:
			created++
		case a.status == http.StatusOK && a.body["existing"] == true:
		default:
			t.Fatalf("got %d %v, want 202 for one, 200 existing for the others", a.status, a.body)
		}
		if first == "" {
			first = id
		}
		if id != first {
			t.Fatalf("got executions %s and %s, want one", first, id)
		}
	}
	if created != 1 {
		t.Errorf("got %d executions created, want 1", created)
	}
	if calls := e.executeCalls(t) - before; calls != 1 {
		t.Errorf("Remote Actions API calls: got %d, want 1", calls)
	}
	outcomes := map[string]int{}
	for _, a := range e.audit(t) {
		if a.ExecutionID == first {
			outcomes[a.Outcome]++
		}
	}
	if outcomes[store.AuditTriggered] != 1 || outcomes[store.AuditExisting] != n-1 {
		t.Errorf("audit: got %v, want 1 triggered and %d existing", outcomes, n-1)
	}

	// The device is offline: Nexthink waits for it, and so does every duplicate.
	testenv.Eventually(t, "waiting_for_device", func() bool { return str(e.execution(t, first), "status") == events.StatusWaitingForDevice })
	byUID := map[string]any{"remote_action": "#repair_onedrive", "device": dev.CollectorUID}
	status, h, got := e.do(t, e.b, http.MethodPost, executionsPath, byUID, nil)
	if status != http.StatusOK || got["existing"] != true || str(got, "id") != first || str(got, "status") != events.StatusWaitingForDevice ||
		h.Get("Location") != executionsPath+"/"+first {
		t.Errorf("while waiting for the device: got %d %v (Location %q), want 200 existing %s", status, got, h.Get("Location"), first)
	}
	key := http.Header{"Idempotency-Key": {"dup-then-retry"}}
	if status, _, got := e.do(t, e.a, http.MethodPost, executionsPath, body, key); status != http.StatusOK || got["existing"] != true || str(got, "id") != first {
		t.Errorf("new key with a duplicate: got %d %v, want existing %s", status, got, first)
	}
	// The key is bound to that execution: a retry replays it (202: it is not final).
	if status, h, got := e.do(t, e.b, http.MethodPost, executionsPath, body, key); status != http.StatusAccepted || got["replayed"] != true ||
		str(got, "id") != first || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry of that key: got %d %v, want %s replayed", status, got, first)
	}

	// Other params are another fix; the same params again are not.
	startup := func(apps string, force bool) (int, map[string]any) {
		b := map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": dev.Name,
			"params": map[string]string{"ApplicationNames": apps}}
		if force {
			b["force"] = true
		}
		status, _, got := e.do(t, e.a, http.MethodPost, executionsPath, b, nil)
		return status, got
	}
	s1, spotify := startup("Spotify", false)
	s2, teams := startup("Teams", false)
	s3, again := startup("Spotify", false)
	if s1 != http.StatusAccepted || s2 != http.StatusAccepted || str(spotify, "id") == str(teams, "id") {
		t.Errorf("other params: got %d %s and %d %s, want two new executions", s1, str(spotify, "id"), s2, str(teams, "id"))
	}
	if s3 != http.StatusOK || again["existing"] != true || str(again, "id") != str(spotify, "id") {
		t.Errorf("the same params: got %d %v, want existing %s", s3, again, str(spotify, "id"))
	}

	// force: a second one runs, and the first stays the answer to a duplicate.
	before = e.executeCalls(t)
	forced := map[string]any{"remote_action": "#repair_onedrive", "device": dev.Name, "force": true}
	status, _, second := e.do(t, e.b, http.MethodPost, executionsPath, forced, nil)
	if status != http.StatusAccepted || second["existing"] != nil || str(second, "id") == first {
		t.Errorf("force: got %d %v, want a new execution", status, second)
	}
	if calls := e.executeCalls(t) - before; calls != 1 {
		t.Errorf("force: Remote Actions API calls: got %d, want 1", calls)
	}
	if status, _, got := e.do(t, e.a, http.MethodPost, executionsPath, body, nil); status != http.StatusOK || str(got, "id") != first {
		t.Errorf("after force: got %d %v, want the oldest active, %s", status, got, first)
	}
	if status, _, got := e.do(t, e.a, http.MethodPost, executionsPath, map[string]any{"remote_action": "#repair_onedrive", "device": dev.Name, "force": "yes"}, nil); status != http.StatusBadRequest || str(got, "field") != "force" {
		t.Errorf("force \"yes\": got %d %v, want 400 naming force", status, got)
	}

	// Once the device is back and both finished, the fix may run again.
	e.setOnline(t, true, dev.Name)
	for _, id := range []string{first, str(second, "id")} {
		testenv.Eventually(t, id+" to finish", func() bool { return events.FinalStatus(str(e.execution(t, id), "status")) })
	}
	status, _, next := e.do(t, e.a, http.MethodPost, executionsPath, body, nil)
	if status/100 != 2 || next["existing"] != nil || str(next, "id") == first || str(next, "id") == str(second, "id") {
		t.Errorf("after the others finished: got %d %v, want a new execution", status, next)
	}
}

// TestRemediationDedupes: a topic's remediation and a plain trigger of its remote
// action with the same params are the same fix.
func TestRemediationDedupes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev := e.sample(t, nxsim.Sample{N: 1, Seed: 77, Platform: "Windows", Presence: "offline"})[0]
	params := map[string]string{"ApplicationNames": "Spotify,Zoom"}
	body, _ := json.Marshal(events.Diagnosis{ID: "dg_1", Topic: "slow_pc", Remediations: []events.SuggestedRemedy{{ID: "disable_startup_apps",
		RemoteAction: "#disable_application_from_startup_menu", Params: params, Ready: true}}})
	if err := e.db.SaveDiagnosis(ctx, store.Diagnosis{ID: "dg_1", Topic: "slow_pc", CollectorUID: dev.CollectorUID, Instance: "eu",
		DeviceName: dev.Name, DiagnosedAt: time.Now(), Source: "live", Body: body}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/topics/slow_pc/remediations/disable_startup_apps"
	status, _, first := e.do(t, e.a, http.MethodPost, path, map[string]any{"device": dev.Name}, nil)
	if status != http.StatusAccepted || str(first, "remediation") != "disable_startup_apps" {
		t.Fatalf("remediation: got %d %v", status, first)
	}
	for name, req := range map[string]struct {
		path string
		body map[string]any
	}{
		"the remediation again": {path, map[string]any{"device": dev.Name, "reason": "again"}},
		"its remote action":     {executionsPath, map[string]any{"remote_action": "#disable_application_from_startup_menu", "device": dev.CollectorUID, "params": params}},
	} {
		status, _, got := e.do(t, e.a, http.MethodPost, req.path, req.body, nil)
		if status != http.StatusOK || got["existing"] != true || str(got, "id") != str(first, "id") {
			t.Errorf("%s: got %d %v, want existing %s", name, status, got, str(first, "id"))
		}
	}
	status, _, forced := e.do(t, e.a, http.MethodPost, path, map[string]any{"device": dev.Name, "force": true}, nil)
	if status != http.StatusAccepted || forced["existing"] != nil || str(forced, "id") == str(first, "id") {
		t.Errorf("force: got %d %v, want a new execution", status, forced)
	}
	if status, _, got := e.do(t, e.a, http.MethodPost, path, map[string]any{"device": dev.Name, "force": 1}, nil); status != http.StatusBadRequest || str(got, "field") != "force" {
		t.Errorf("force 1: got %d %v, want 400 naming force", status, got)
	}
	if n := e.executeCalls(t); n != 2 {
		t.Errorf("Remote Actions API calls: got %d, want 2", n)
	}
}
