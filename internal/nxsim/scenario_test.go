package nxsim

import (
	"testing"
)

// The scenario devices through the real saved queries of topics/ and config/.
func TestScenarioDevicesThroughTopicQueries(t *testing.T) {
	in := startTest(t, nil)
	tok := token(t, in.URL(), "eu-client", "eu-client-secret")
	const (
		isOnline  = "remote_action.get_outlook_online_windows.execution.outputs.IsOnline"
		onStatus  = "remote_action.get_outlook_online_windows.execution.status"
		plugins   = "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList"
		boot      = "device.boot.days_since_last_full_boot"
		outdated  = "outdated_office_packages"
		oneDrive  = "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"
		freeSpace = "free_space"
		highCount = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount"
		highApps  = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactApplications"
		gpo       = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds"
		gpoDC     = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoDCDiscoveryInSeconds"
	)
	healthy := map[string]any{isOnline: "Yes", onStatus: "success", plugins: `["-"]`, boot: 2.0, outdated: 0.0,
		oneDrive: "OneDrive is running", highCount: 0.0, highApps: "", gpo: 1.2, gpoDC: 0.3}
	tests := []struct {
		device string
		change map[string]any
		low    bool // free space below 6 GB
	}{
		{"PC-OUTLOOK-OFFLINE", map[string]any{isOnline: "No"}, false},
		{"PC-OUTLOOK-PLUGIN", map[string]any{plugins: `["Grammarly"]`}, false},
		{"PC-OFFICE-OUTDATED", map[string]any{outdated: 1.0}, false},
		{"PC-ONEDRIVE", map[string]any{oneDrive: "OneDrive is installed but not running"}, false},
		{"PC-LOW-DISK", nil, true},
		{"PC-STARTUP", map[string]any{highCount: 2.0, highApps: "Spotify,Teams Machine-Wide Installer"}, false},
		{"PC-GPO", map[string]any{gpo: 8.5, gpoDC: 4.0}, false},
		{"PC-UPTIME", map[string]any{boot: 21.0}, false},
		{"PC-HEALTHY", nil, false},
		{"PC-PRINTER", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			got := map[string]any{}
			for _, id := range []string{"#diagnose_outlook_issues", "#diagnose_onedrive_issues", "#diagnose_slow_pc_issues", "#get_startup_impact_applications"} {
				rows := execV2(t, in.URL(), tok, id, map[string]string{"device_name": tt.device})
				if len(rows) != 1 {
					t.Fatalf("%s: got %d rows, want 1", id, len(rows))
				}
				for k, v := range rows[0] {
					got[k] = v
				}
			}
			for field, want := range healthy {
				if w, ok := tt.change[field]; ok {
					want = w
				}
				if got[field] != want {
					t.Errorf("%s: got %#v, want %#v", field, got[field], want)
				}
			}
			free, _ := got[freeSpace].(float64)
			if tt.low != (free <= 6) || free < 3 || free > 110 {
				t.Errorf("free_space: got %v GB, want low=%v", got[freeSpace], tt.low)
			}
		})
	}
}

func TestUsersFindTheirDevices(t *testing.T) {
	in := startTest(t, nil)
	tok := token(t, in.URL(), "eu-nql", "eu-nql-secret")
	tests := []struct {
		user string
		want []string
	}{
		{"jdoe", []string{"PC-OUTLOOK-OFFLINE", "MAC-HEALTHY"}},
		{"asmith", []string{"PC-LOW-DISK"}},
		{"bwayne", []string{"PC-HEALTHY"}},
		{"tstark", []string{"PC-STARTUP"}},
		{"ckent", []string{"PC-OFFLINE"}},
		{"nobody", nil},
	}
	for _, tt := range tests {
		rows := execV2(t, in.URL(), tok, "#get_device_basic_infos", map[string]string{"username": tt.user})
		var got []string
		for _, r := range rows {
			got = append(got, r["device.name"].(string))
		}
		if len(got) != len(tt.want) {
			t.Errorf("devices of %s: got %v, want %v", tt.user, got, tt.want)
			continue
		}
		for k := range got {
			if got[k] != tt.want[k] {
				t.Errorf("devices of %s: got %v, want %v (most recent first)", tt.user, got, tt.want)
			}
		}
	}
}
