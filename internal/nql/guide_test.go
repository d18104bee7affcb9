package nql

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The queries of Nexthink's chatbot integration guide are kept in testdata, byte for
// byte: the guide's use cases are what this package must run. The topics extend the
// diagnosis queries (a test of internal/topic keeps them equal to these copies); the
// identification and result queries are saved in config/queries.yaml
// (TestGuideQueriesAreSaved).

// guideQuery reads a query of the guide from testdata, verbatim.
func guideQuery(t testing.TB, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seeds", id+".nql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func guideIDs(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.nql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries of the guide in testdata/seeds: %v", err)
	}
	var ids []string
	for _, f := range files {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".nql"))
	}
	return ids
}

// TestGuideQueriesAreSaved: the queries dexbridge runs outside any topic
// (config/queries.yaml) are the guide's, except for the timeframe of the user look-up,
// which is USER_ACTIVITY_PERIOD's default (30 days) instead of the guide's 7 days.
func TestGuideQueriesAreSaved(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Queries []struct{ ID, NQL string }
	}
	if err := yaml.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"get_remote_action_result": guideQuery(t, "get_remote_action_result"),
		"get_device_basic_infos":   strings.ReplaceAll(guideQuery(t, "get_device_basic_infos"), "past 7d", "past 30d"),
	}
	for _, q := range saved.Queries {
		id := strings.TrimPrefix(q.ID, "#")
		if w, ok := want[id]; ok {
			if q.NQL != w {
				t.Errorf("config/queries.yaml #%s:\ngot  %q\nwant %q", id, q.NQL, w)
			}
			delete(want, id)
		}
	}
	for id := range want {
		t.Errorf("config/queries.yaml lacks #%s", id)
	}
}

func TestGuideQueries(t *testing.T) {
	tests := []struct {
		id      string
		params  map[string]string
		headers []string
		rows    [][]Value
	}{
		{
			id:     "get_device_basic_infos",
			params: map[string]string{"username": "alice"},
			headers: []string{"device.collector.uid", "device.name",
				"device.operating_system.platform", "device.operating_system.name",
				"device.hardware.type", "device.hardware.manufacturer", "device.last_seen"},
			// MAC-3 is outside the 7 days, PC-4 and PC-6 have no alice session; PC-5,
			// seen exactly 7 days ago, is inside (From is inclusive).
			rows: [][]Value{
				{"c-d1", "PC-1", "Windows", "Windows 11", "laptop", "Acme", ago(hour)},
				{"c-d2", "PC-2", "Windows", "Windows 11", "laptop", "Acme", ago(2 * day)},
				{"c-d5", "PC-5", "Windows", "Windows 11", "laptop", "Acme", ago(7 * day)},
			},
		},
		{
			id: "get_device_basic_infos", params: map[string]string{"username": "BOB"},
			headers: []string{"device.collector.uid", "device.name",
				"device.operating_system.platform", "device.operating_system.name",
				"device.hardware.type", "device.hardware.manufacturer", "device.last_seen"},
			// bob's PC-4 session is 8 days old.
			rows: [][]Value{{"c-d1", "PC-1", "Windows", "Windows 11", "laptop", "Acme", ago(hour)}},
		},
		{
			id: "get_remote_action_result", params: map[string]string{"request_id": "req-1"},
			headers: []string{"remote_action.executions.request_id", "device.name",
				"remote_action.name", "remote_action.executions.status",
				"remote_action.executions.status_details", "remote_action.executions.outputs"},
			rows: [][]Value{
				{"req-1", "PC-1", "Get OneDrive status", "success", "", `{"OneDriveStatus":"ok"}`},
				{"req-1", "PC-2", "Get OneDrive status", "failure", "", `{"OneDriveStatus":"ok"}`},
			},
		},
		{
			// req-3 is 30 hours old: outside past 24h.
			id: "get_remote_action_result", params: map[string]string{"request_id": "req-3"},
			headers: []string{"remote_action.executions.request_id", "device.name",
				"remote_action.name", "remote_action.executions.status",
				"remote_action.executions.status_details", "remote_action.executions.outputs"},
		},
		{
			id: "diagnose_outlook_issues", params: map[string]string{"device_name": "PC-1"},
			headers: outlookHeaders,
			// Microsoft 365 15.0.1 is outdated; Teams is not an Office package.
			rows: [][]Value{{"c-d1", "PC-1", `["-"]`, "No", "success", int64(12), int64(1)}},
		},
		{
			id: "diagnose_outlook_issues", params: map[string]string{"device_name": "pc-2"},
			headers: outlookHeaders,
			// Microsoft 365 16.0.1 is current; "Microsoft Office Professional" is not
			// in the exact list.
			rows: [][]Value{{"c-d2", "PC-2", nil, nil, nil, int64(3), int64(0)}},
		},
		{
			id: "diagnose_outlook_issues", params: map[string]string{"device_name": "PC-4"},
			headers: outlookHeaders,
			rows:    [][]Value{{"c-d4", "PC-4", nil, nil, nil, int64(0), int64(0)}},
		},
		{
			id: "diagnose_onedrive_issues", params: map[string]string{"device_name": "PC-1"},
			headers: []string{"device.collector.uid", "device.name",
				"remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"},
			rows: [][]Value{{"c-d1", "PC-1", "OneDrive is not installed"}},
		},
		{
			id: "diagnose_slow_pc_issues", params: map[string]string{"device_name": "PC-1"},
			headers: slowPCHeaders,
			// (50e9 + 30e9) / 2 / 1e9: the 30-hour-old event is outside past 24h.
			rows: [][]Value{{"c-d1", "PC-1", 40.0, int64(12), int64(1), int64(2), "4", 7.5}},
		},
		{
			id: "diagnose_slow_pc_issues", params: map[string]string{"device_name": "PC-2"},
			headers: slowPCHeaders,
			// No event in 24h: free_space is null. The wildcard list matches
			// "Microsoft Office Professional" 15.2.
			rows: [][]Value{{"c-d2", "PC-2", nil, int64(3), int64(1), nil, nil, nil}},
		},
		{
			// MAC-3 was last seen 10 days ago: outside `devices during past 7d`.
			id: "diagnose_slow_pc_issues", params: map[string]string{"device_name": "MAC-3"},
			headers: slowPCHeaders,
		},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			q := guideQuery(t, tt.id)
			if _, err := Parse(q); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, src := range []Source{fixture(), &indexedSource{memSource: fixture(), indexed: map[string]bool{
				"devices/device.name": true, "remote_action.executions/remote_action.executions.request_id": true,
			}}} {
				res := run(t, src, q, tt.params)
				if !slices.Equal(res.Headers, tt.headers) {
					t.Errorf("%T headers:\ngot  %q\nwant %q", src, res.Headers, tt.headers)
				}
				if got, want := showRows(res.Rows), showRows(tt.rows); got != want {
					t.Errorf("%T rows:\ngot\n%swant\n%s", src, got, want)
				}
			}
		})
	}
}

var outlookHeaders = []string{"device.collector.uid", "device.name",
	"remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList",
	"remote_action.get_outlook_online_windows.execution.outputs.IsOnline",
	"remote_action.get_outlook_online_windows.execution.status",
	"device.boot.days_since_last_full_boot", "outdated_office_packages"}

var slowPCHeaders = []string{"device.collector.uid", "device.name", "free_space",
	"device.boot.days_since_last_full_boot", "outdated_office_packages",
	"remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount",
	"remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds",
	"remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoDCDiscoveryInSeconds"}

func TestGuideAnalysis(t *testing.T) {
	tests := []struct {
		id         string
		joins      []string
		params     []string
		key        *DeviceKey
		deviceOnly bool
		fields     []string // must all be in Analysis.Fields
	}{
		{id: "get_device_basic_infos", joins: []string{"session.events"}, params: []string{"username"},
			fields: []string{"device.last_seen", "session.events.end_time", "user.name", "device.collector.uid"}},
		{id: "get_remote_action_result", params: []string{"request_id"},
			fields: []string{"remote_action.executions.time", "remote_action.executions.request_id", "remote_action.name"}},
		{id: "diagnose_outlook_issues", joins: []string{"package.installed_packages"}, params: []string{"device_name"},
			key:    &DeviceKey{Field: "device.name", Parameter: "device_name"},
			fields: []string{"device.name", "package.name", "package.version", "remote_action.get_outlook_online_windows.execution.status"}},
		{id: "diagnose_onedrive_issues", params: []string{"device_name"},
			key:    &DeviceKey{Field: "device.name", Parameter: "device_name"},
			fields: []string{"device.name", "device.collector.uid", "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"}},
		{id: "diagnose_slow_pc_issues", joins: []string{"device_performance.events", "package.installed_packages"},
			params: []string{"device_name"}, key: &DeviceKey{Field: "device.name", Parameter: "device_name"},
			fields: []string{"device_performance.events.system_drive_free_space", "device_performance.events.end_time"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := Compile(guideQuery(t, tt.id), DefaultSchema())
			if err != nil {
				t.Fatal(err)
			}
			a := p.Analysis()
			if !slices.Equal(a.Joins, tt.joins) {
				t.Errorf("Joins: got %q, want %q", a.Joins, tt.joins)
			}
			if !slices.Equal(a.Parameters, tt.params) {
				t.Errorf("Parameters: got %q, want %q", a.Parameters, tt.params)
			}
			if (a.DeviceKey == nil) != (tt.key == nil) || a.DeviceKey != nil && *a.DeviceKey != *tt.key {
				t.Errorf("DeviceKey: got %+v, want %+v", a.DeviceKey, tt.key)
			}
			if a.DeviceOnly != tt.deviceOnly {
				t.Errorf("DeviceOnly: got %v, want %v", a.DeviceOnly, tt.deviceOnly)
			}
			for _, f := range tt.fields {
				if !slices.Contains(a.Fields, f) {
					t.Errorf("Fields %q lacks %q", a.Fields, f)
				}
			}
			res := run(t, fixture(), guideQuery(t, tt.id), map[string]string{
				"username": "alice", "request_id": "req-1", "device_name": "PC-1"})
			if !slices.Equal(a.Headers, res.Headers) {
				t.Errorf("Headers: got %q, want the result's %q", a.Headers, res.Headers)
			}
		})
	}
}
