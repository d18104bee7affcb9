package topics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestDiagnosisMarksARemediationInProgress: on an offline fleet device where the
// Outlook topic's generic repair waits for the device, the diagnosis marks that
// remediation in progress with the execution (and keeps it ready); a second refresh
// while the first one's data collection waits reuses it instead of collecting again.
func TestDiagnosisMarksARemediationInProgress(t *testing.T) {
	e := newEnv(t, envOptions{actions: true, refreshTimeout: 2 * time.Second})
	devs, err := nxsim.NewControlClient(e.sim.TenantURL("eu"), nil).SampleDevices(context.Background(),
		nxsim.Sample{N: 1, Seed: 15, Platform: "Windows", Presence: "offline"})
	if err != nil || len(devs) != 1 {
		t.Fatalf("sample: %v %v", devs, err)
	}
	dev := devs[0]
	fixer := e.newKey("fixer", "remediate")
	var ex events.Execution
	body, _ := json.Marshal(map[string]any{"remote_action": "#repair_outlook_ost_problem", "device": dev.Name})
	if resp := e.do(http.MethodPost, "/api/v1/remote-actions/executions", fixer, string(body), &ex); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("trigger: got %d", resp.StatusCode)
	}

	code, d, p := e.diagnose("outlook", dev.Name, false)
	if code != http.StatusOK {
		t.Fatalf("diagnose: got %d %v", code, p)
	}
	marked := 0
	for _, s := range d.Remediations {
		if s.InProgress == nil {
			continue
		}
		marked++
		if s.RemoteAction != "#repair_outlook_ost_problem" || s.InProgress.ExecutionID != ex.ID || !s.Ready ||
			events.FinalStatus(s.InProgress.Status) || !s.InProgress.CreatedAt.Equal(ex.CreatedAt) {
			t.Errorf("remediation %s: got %+v in progress %+v, want ready and %s", s.ID, s, s.InProgress, ex.ID)
		}
	}
	if marked != 1 {
		t.Errorf("got %d remediations in progress, want 1: %+v", marked, d.Remediations)
	}

	// Refresh twice: the second finds the first's collections still waiting for the
	// device, and reuses them.
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	_, first, p := e.diagnose("outlook", dev.Name, true)
	_, second, p2 := e.diagnose("outlook", dev.Name, true)
	if len(first.Refreshed) == 0 || len(first.Refreshed) != len(second.Refreshed) {
		t.Fatalf("refreshed: got %+v (%v) and %+v (%v), want the same collections", first.Refreshed, p, second.Refreshed, p2)
	}
	for i, x := range first.Refreshed {
		if events.FinalStatus(x.Status) || second.Refreshed[i].ID != x.ID {
			t.Errorf("collection %s: got %s then %s (%s), want the same, still waiting", x.RemoteAction, x.ID, second.Refreshed[i].ID, x.Status)
		}
	}
	if n := discoverytest.Counters(t, e.sim, "eu").Endpoints["POST /api/v1/act/execute"]; n != int64(len(first.Refreshed)) {
		t.Errorf("Remote Actions API calls: got %d, want %d (one per collection)", n, len(first.Refreshed))
	}
}
