package topics_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestRefreshRunsTheDataCollection: with "refresh": true the topic's data-collection
// remote actions run on the device through the remote-action manager (and the poller
// follows them), the diagnosis waits until they are final and then queries live; a
// failed collection is reported and the diagnosis still answers; at the bound the
// diagnosis goes on with what it has.
func TestRefreshRunsTheDataCollection(t *testing.T) {
	e := newEnv(t, envOptions{actions: true, refreshTimeout: 3 * time.Second})
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)

	start := time.Now()
	code, d, p := e.diagnose("slow_pc", "PC-STARTUP", true)
	if code != 200 {
		t.Fatalf("refresh: got %d %v", code, p)
	}
	took := time.Since(start)
	var actions []string
	for _, ex := range d.Refreshed {
		actions = append(actions, ex.RemoteAction)
		if ex.Status != events.StatusSuccess || ex.Device.Name != "PC-STARTUP" {
			t.Errorf("refreshed %s: got status %s on %s, want success on PC-STARTUP", ex.RemoteAction, ex.Status, ex.Device.Name)
		}
	}
	if want := []string{"#get_gpo_startup_impact_windows", "#get_startup_impact_windows"}; !slices.Equal(actions, want) {
		t.Errorf("refreshed: got %v, want %v", actions, want)
	}
	if d.Source != "live" || d.Timing["refresh"] < 150 || took > 3*time.Second {
		t.Errorf("got source %s, refresh %d ms, took %s; want live after a refresh of at least 150 ms", d.Source, d.Timing["refresh"], took)
	}
	if len(d.Findings) != 1 || d.Findings[0].Rule != "high_impact_startup_apps" {
		t.Errorf("findings: got %+v, want high_impact_startup_apps", d.Findings)
	}
	c := discoverytest.Counters(t, e.sim, "eu")
	for _, a := range actions {
		if c.RemoteActions[a] != 1 {
			t.Errorf("nxsim ran %s %d times, want 1", a, c.RemoteActions[a])
		}
	}

	// A collection that fails is reported; the diagnosis answers from what there is.
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/executions/settings",
		nxsim.ExecutionSettings{PendingMS: 50, RunningMS: 100, FailActions: []string{"#get_outlook_online_windows"}}, nil)
	code, d, p = e.diagnose("outlook", "PC-OUTLOOK-PLUGIN", true)
	if code != 200 {
		t.Fatalf("refresh with a failed collection: got %d %v", code, p)
	}
	status := map[string]string{}
	for _, ex := range d.Refreshed {
		status[ex.RemoteAction] = ex.Status
	}
	if status["#get_outlook_online_windows"] != events.StatusFailure || status["#get_outlook_plugin_crash_details_windows"] != events.StatusSuccess {
		t.Errorf("refreshed: got %v, want the online check failed and the plugin check succeeded", status)
	}
	if len(d.Findings) == 0 || d.Findings[0].Rule != "outlook_plugin_crashed" {
		t.Errorf("findings: got %+v, want outlook_plugin_crashed", d.Findings)
	}

	// Executions that do not finish within the bound (3 s here): the diagnosis goes on.
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/executions/settings", nxsim.ExecutionSettings{PendingMS: 60_000, RunningMS: 100}, nil)
	start = time.Now()
	code, d, p = e.diagnose("onedrive", "PC-ONEDRIVE", true)
	took = time.Since(start)
	if code != 200 || len(d.Refreshed) != 1 || events.FinalStatus(d.Refreshed[0].Status) || took < 3*time.Second || took > 8*time.Second {
		t.Errorf("bound: got %d %v refreshed %+v after %s, want the unfinished collection after about 3 s", code, p, d.Refreshed, took)
	}
	// nxsim shows the running collection's empty outputs: the value the device's
	// previous collection gave, which dexbridge read before the refresh, stands in,
	// marked as the last known one, with its own time.
	const oneDrive = "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"
	ft := d.FieldTimes[oneDrive]
	if d.Fields[oneDrive] == nil || !ft.LastKnown || ft.LatestStatus != events.StatusPending || ft.AsOf == nil || ft.AsOf.After(start) {
		t.Errorf("after the bound: got %s = %v, %+v; want the last known value, dated before the refresh", oneDrive, d.Fields[oneDrive], ft)
	}
	if len(d.Findings) != 1 || d.Findings[0].Rule != "onedrive_not_working" {
		t.Errorf("rules after the bound: got %+v, want onedrive_not_working found on the last known value", d.Rules)
	}
}
