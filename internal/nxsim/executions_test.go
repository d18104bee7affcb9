package nxsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/testenv"
)

// trigger runs a remote action on named devices and returns the request id.
func trigger(t *testing.T, in *Instance, tok, action string, params map[string]string, devices ...string) string {
	t.Helper()
	uids := make([]string, len(devices))
	for k, d := range devices {
		uids[k] = deviceUID(t, in, d)
	}
	status, _, b := call(t, http.MethodPost, in.URL()+"/api/v1/act/execute", tok,
		map[string]any{"remoteActionId": action, "devices": uids, "params": params})
	var out struct {
		RequestID        string `json:"requestId"`
		ExpiresInMinutes int    `json:"expiresInMinutes"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &out) != nil || out.RequestID == "" || out.ExpiresInMinutes != 60 {
		t.Fatalf("execute %s: got %d %s", action, status, b)
	}
	return out.RequestID
}

// waitStatus polls #get_remote_action_result until the execution reaches want, and
// returns every status seen on the way.
func waitStatus(t *testing.T, in *Instance, tok, reqID, want string) ([]string, map[string]any) {
	t.Helper()
	var seen []string
	var last map[string]any
	testenv.Eventually(t, "status "+want, func() bool {
		rows := execV2(t, in.URL(), tok, "#get_remote_action_result", map[string]string{"request_id": reqID})
		if len(rows) != 1 {
			t.Fatalf("executions of %s: got %d rows, want 1", reqID, len(rows))
		}
		last = rows[0]
		s := last["remote_action.executions.status"].(string)
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == want
	})
	return seen, last
}

func TestRemediationsMakeTheNextDiagnosisHealthy(t *testing.T) {
	in := startTest(t, nil)
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	tests := []struct {
		action, device, query, field string
		params                       map[string]string
		before, after                any
	}{
		{"#set_outlook_online", "PC-OUTLOOK-OFFLINE", "#diagnose_outlook_issues", "remote_action.get_outlook_online_windows.execution.outputs.IsOnline", nil, "No", "Yes"},
		{"#set_outlook_plugins", "PC-OUTLOOK-PLUGIN", "#diagnose_outlook_issues", "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList", nil, `["Grammarly"]`, `["-"]`},
		{"#repair_office_365", "PC-OFFICE-OUTDATED", "#diagnose_outlook_issues", "outdated_office_packages", nil, 1.0, 0.0},
		{"#repair_onedrive", "PC-ONEDRIVE", "#diagnose_onedrive_issues", "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus", nil, "OneDrive is installed but not running", "OneDrive is running"},
		{"#disable_application_from_startup_menu", "PC-STARTUP", "#diagnose_slow_pc_issues", "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount", map[string]string{"ApplicationNames": "Spotify,Teams Machine-Wide Installer"}, 2.0, 0.0},
		{"#update_group_policy_settings", "PC-GPO", "#diagnose_slow_pc_issues", "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds", nil, 8.5, 1.1},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			value := func() any {
				rows := execV2(t, in.URL(), tok, tt.query, map[string]string{"device_name": tt.device})
				return rows[0][tt.field]
			}
			if got := value(); got != tt.before {
				t.Fatalf("before: got %#v, want %#v", got, tt.before)
			}
			req := trigger(t, in, tok, tt.action, tt.params, tt.device)
			seen, row := waitStatus(t, in, tok, req, "success")
			if seen[len(seen)-1] != "success" || row["device.name"] != tt.device || row["remote_action.name"] == "" {
				t.Errorf("execution: saw %v, last row %v", seen, row)
			}
			if got := value(); got != tt.after {
				t.Errorf("after: got %#v, want %#v", got, tt.after)
			}
		})
	}
	t.Run("disk cleanup", func(t *testing.T) {
		free := func() float64 {
			return execV2(t, in.URL(), tok, "#diagnose_slow_pc_issues", map[string]string{"device_name": "PC-LOW-DISK"})[0]["free_space"].(float64)
		}
		if got := free(); got > 6 {
			t.Fatalf("before: got %v GB", got)
		}
		waitStatus(t, in, tok, trigger(t, in, tok, "#disk_cleanup", nil, "PC-LOW-DISK"), "success")
		if got := free(); got < 20 {
			t.Errorf("after: got %v GB, want above 20", got)
		}
	})
	t.Run("printer", func(t *testing.T) {
		waitStatus(t, in, tok, trigger(t, in, tok, "#restart_print_spooler", nil, "PC-PRINTER"), "success")
		waitStatus(t, in, tok, trigger(t, in, tok, "#clear_print_queue", nil, "PC-PRINTER"), "success")
		req := trigger(t, in, tok, "#get_printer_status_windows", nil, "PC-PRINTER")
		_, row := waitStatus(t, in, tok, req, "success")
		var out map[string]any
		if err := json.Unmarshal([]byte(row["remote_action.executions.outputs"].(string)), &out); err != nil {
			t.Fatal(err)
		}
		if out["SpoolerStatus"] != "Running" || out["StuckJobs"] != 0.0 {
			t.Errorf("printer outputs after repair: got %v", out)
		}
	})
}

func TestExecutionStates(t *testing.T) {
	in := startTest(t, func(c *Config) {
		c.Executions = ExecutionTiming{Pending: 150 * time.Millisecond, Running: 150 * time.Millisecond, Tick: 2 * time.Millisecond}
	})
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")

	t.Run("pending, in progress, success", func(t *testing.T) {
		// The executor's clock moves only when the test moves it, so each state is
		// seen however slowly the test polls.
		clock := &fakeClock{t: time.Now()}
		in := startTest(t, func(c *Config) {
			c.Clock = clock.Now
			c.Executions = ExecutionTiming{Pending: 150 * time.Millisecond, Running: 150 * time.Millisecond, Tick: 2 * time.Millisecond}
		})
		tok := token(t, in.URL(), "eu-client", "eu-client-secret")
		req := trigger(t, in, tok, "#repair_outlook_ost_problem", nil, "PC-HEALTHY")
		if seen, _ := waitStatus(t, in, tok, req, "pending"); len(seen) != 1 {
			t.Errorf("statuses: got %v, want pending first", seen)
		}
		clock.Add(150 * time.Millisecond)
		waitStatus(t, in, tok, req, "in_progress")
		clock.Add(150 * time.Millisecond)
		waitStatus(t, in, tok, req, "success")
	})
	t.Run("offline device waits, then runs", func(t *testing.T) {
		req := trigger(t, in, tok, "#repair_onedrive", nil, "PC-OFFLINE")
		waitStatus(t, in, tok, req, "waiting_for_device")
		call(t, http.MethodPost, in.URL()+"/_nxsim/devices/online", "", devicesOnline{Devices: []string{"PC-OFFLINE"}, Online: true})
		waitStatus(t, in, tok, req, "success")
		call(t, http.MethodPost, in.URL()+"/_nxsim/devices/online", "", devicesOnline{Devices: []string{"PC-OFFLINE"}, Online: false})
	})
	t.Run("expired", func(t *testing.T) {
		call(t, http.MethodPut, in.URL()+"/_nxsim/executions/settings", "", ExecutionSettings{PendingMS: 30, RunningMS: 60, ExpireAfterMS: 300})
		t.Cleanup(func() {
			call(t, http.MethodPut, in.URL()+"/_nxsim/executions/settings", "", ExecutionSettings{PendingMS: 150, RunningMS: 150})
		})
		seen, _ := waitStatus(t, in, tok, trigger(t, in, tok, "#repair_onedrive", nil, "PC-OFFLINE"), "expired")
		if !slices.Contains(seen, "waiting_for_device") {
			t.Errorf("statuses: got %v, want waiting_for_device before expired", seen)
		}
	})
	for _, forced := range []ExecutionSettings{
		{PendingMS: 1, RunningMS: 1, FailDevices: []string{"PC-HEALTHY"}},
		{PendingMS: 1, RunningMS: 1, FailActions: []string{"#repair_outlook_ost_problem"}, FailureDetails: "boom"},
	} {
		t.Run("forced failure", func(t *testing.T) {
			call(t, http.MethodPut, in.URL()+"/_nxsim/executions/settings", "", forced)
			t.Cleanup(func() {
				call(t, http.MethodPut, in.URL()+"/_nxsim/executions/settings", "", ExecutionSettings{PendingMS: 150, RunningMS: 150})
			})
			_, row := waitStatus(t, in, tok, trigger(t, in, tok, "#repair_outlook_ost_problem", nil, "PC-HEALTHY"), "failure")
			if want := forced.FailureDetails; want != "" && row["remote_action.executions.status_details"] != want {
				t.Errorf("status_details: got %v, want %s", row["remote_action.executions.status_details"], want)
			}
		})
	}
	t.Run("data collection shows on the device", func(t *testing.T) {
		req := trigger(t, in, tok, "#get_outlook_online_windows", nil, "PC-OUTLOOK-OFFLINE")
		status := func() any {
			return execV2(t, in.URL(), tok, "#diagnose_outlook_issues", map[string]string{"device_name": "PC-OUTLOOK-OFFLINE"})[0]["remote_action.get_outlook_online_windows.execution.status"]
		}
		if got := status(); got != "pending" && got != "in_progress" {
			t.Errorf("device status while running: got %v", got)
		}
		_, row := waitStatus(t, in, tok, req, "success")
		if got := status(); got != "success" {
			t.Errorf("device status after: got %v", got)
		}
		if row["remote_action.executions.outputs"] != `{"IsOnline":"No"}` {
			t.Errorf("outputs: got %v", row["remote_action.executions.outputs"])
		}
	})
	t.Run("macOS device and a Windows-only action", func(t *testing.T) {
		waitStatus(t, in, tok, trigger(t, in, tok, "#repair_onedrive", nil, "MAC-HEALTHY"), "failure")
	})
}
