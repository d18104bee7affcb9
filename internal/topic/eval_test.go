package topic_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/topic"
)

const (
	topicsDir   = "../../topics"
	allowFile   = "../../config/remote_actions.yaml"
	queriesFile = "../../config/queries.yaml"
)

// shippedFiles are the repository's topics, allow-list and saved queries.
var shippedFiles = topic.Files{Dir: topicsDir, RemoteActions: allowFile, Queries: queriesFile}

func shipped(t testing.TB) *topic.Set {
	t.Helper()
	s, err := shippedFiles.Load()
	if err != nil {
		t.Fatalf("shipped topics: %v", err)
	}
	return s
}

func program(t testing.TB, s *topic.Set, id string) *topic.Program {
	t.Helper()
	p, ok := s.Topic(id)
	if !ok {
		t.Fatalf("no topic %s", id)
	}
	return p
}

// Field names, for readability.
const (
	uid        = "device.collector.uid"
	name       = "device.name"
	bootDays   = "device.boot.days_since_last_full_boot"
	outdated   = "outdated_office_packages"
	isOnline   = "remote_action.get_outlook_online_windows.execution.outputs.IsOnline"
	onlineStat = "remote_action.get_outlook_online_windows.execution.status"
	plugins    = "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList"
	oneDrive   = "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"
	freeSpace  = "free_space"
	highCount  = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount"
	highApps   = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactApplications"
	gpoApplied = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds"
	gpoDC      = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoDCDiscoveryInSeconds"
	spooler    = "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus"
	stuckJobs  = "remote_action.get_printer_status_windows.execution.outputs.StuckJobs"
	printer    = "remote_action.get_printer_status_windows.execution.outputs.DefaultPrinter"
	printStat  = "remote_action.get_printer_status_windows.execution.status"
	cpuAvg     = "average_cpu_usage"
	memAvg     = "average_memory_usage"
	crashes    = "crash_events"
	lastSeen   = "device.last_seen"
	platform   = "device.operating_system.platform"
	osName     = "device.operating_system.name"
	osVersion  = "device.operating_system.version"
	memory     = "device.hardware.memory"
)

// now is the evaluation time of the table tests.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// healthy are the fields of a healthy device per topic, as the NQL API returns them
// (numbers as int64 or float64, as the nql evaluator and nxsim give them).
func healthy(topicID string) map[string]any {
	base := map[string]map[string]any{
		"outlook":  {uid: "u-1", name: "PC-1", plugins: `["-"]`, isOnline: "Yes", onlineStat: "success", bootDays: int64(2), outdated: int64(0)},
		"onedrive": {uid: "u-1", name: "PC-1", oneDrive: "OneDrive is running"},
		"slow_pc": {uid: "u-1", name: "PC-1", freeSpace: 99.7, bootDays: int64(2), outdated: int64(0),
			highCount: int64(0), highApps: "", gpoApplied: 1.2, gpoDC: 0.3},
		"printing":          {uid: "u-1", name: "PC-1", spooler: "Running", stuckJobs: int64(0), printer: "HP LaserJet M507 (Floor 2)", printStat: "success"},
		"device_bad_health": {uid: "u-1", name: "PC-1", bootDays: int64(2), cpuAvg: 35.2, memAvg: 61.0, freeSpace: 99.7, crashes: int64(0)},
		"l1_device_checklist": {uid: "u-1", name: "PC-1", lastSeen: "2026-03-10 11:55:00", platform: "Windows", osName: "Windows 11 Enterprise 23H2",
			osVersion: "10.0.22631", memory: int64(16) << 30, bootDays: int64(2)},
	}
	return base[topicID]
}

type evalCase struct {
	name  string
	topic string
	set   map[string]any // fields that differ from healthy(topic)
	del   []string       // fields absent from the results
	// found are the rules found; notEval maps the rules not evaluated to a part of
	// their reason; every other rule must be clear.
	found   []string
	notEval map[string]string
	// rems are the ids of the suggested remediations in order, generic ones with a
	// trailing "*".
	rems     []string
	params   map[string]map[string]string // remediation id: its params
	notReady map[string]string            // remediation id: a part of why it is not ready
}

func TestSeedRules(t *testing.T) {
	s := shipped(t)
	tests := []evalCase{
		// Outlook: one case per item of the seed's remediation list, item 5 (Repair
		// Outlook OST Problem) being generic.
		{name: "healthy", topic: "outlook", rems: []string{"repair_outlook_ost_problem*"}},
		{name: "offline", topic: "outlook", set: map[string]any{isOnline: "No"},
			found: []string{"outlook_offline"}, rems: []string{"set_outlook_online", "repair_outlook_ost_problem*"}},
		{name: "offline but collection failed", topic: "outlook", set: map[string]any{isOnline: "No", onlineStat: "failure"},
			rems: []string{"repair_outlook_ost_problem*"}},
		{name: "plugin crashed", topic: "outlook", set: map[string]any{plugins: `["Grammarly"]`},
			found: []string{"outlook_plugin_crashed"}, rems: []string{"set_outlook_plugins", "repair_outlook_ost_problem*"}},
		{name: "uptime 21 days", topic: "outlook", set: map[string]any{bootDays: int64(21)},
			found: []string{"restart_overdue"}, rems: []string{"restart_device", "repair_outlook_ost_problem*"}},
		{name: "uptime exactly 10 days", topic: "outlook", set: map[string]any{bootDays: int64(10)},
			rems: []string{"repair_outlook_ost_problem*"}},
		{name: "one outdated office package", topic: "outlook", set: map[string]any{outdated: int64(1)},
			found: []string{"office_outdated"}, rems: []string{"repair_office_365", "repair_outlook_ost_problem*"}},
		{name: "two outdated office packages as json.Number", topic: "outlook", set: map[string]any{outdated: json.Number("2")},
			found: []string{"office_outdated"}, rems: []string{"repair_office_365", "repair_outlook_ost_problem*"}},
		{name: "everything wrong", topic: "outlook",
			set:   map[string]any{isOnline: "No", plugins: `["Grammarly","Zoom"]`, bootDays: 12.0, outdated: 1.0},
			found: []string{"outlook_offline", "outlook_plugin_crashed", "restart_overdue", "office_outdated"},
			rems:  []string{"set_outlook_online", "set_outlook_plugins", "restart_device", "repair_office_365", "repair_outlook_ost_problem*"}},
		{name: "never collected (macOS or new device)", topic: "outlook", set: map[string]any{isOnline: nil, onlineStat: nil, plugins: nil},
			notEval: map[string]string{"outlook_offline": isOnline + ", " + onlineStat + " are null", "outlook_plugin_crashed": plugins + " is null"},
			rems:    []string{"repair_outlook_ost_problem*"}},
		{name: "field missing from the results", topic: "outlook", del: []string{isOnline},
			notEval: map[string]string{"outlook_offline": "no value for " + isOnline},
			rems:    []string{"repair_outlook_ost_problem*"}},
		{name: "count as text is the wrong type", topic: "outlook", set: map[string]any{outdated: "1"},
			notEval: map[string]string{"office_outdated": "evaluation failed"},
			rems:    []string{"repair_outlook_ost_problem*"}},
		{name: "plugin list as a list is the wrong type", topic: "outlook", set: map[string]any{plugins: []any{"-"}},
			notEval: map[string]string{"outlook_plugin_crashed": "cannot compare list with string"},
			rems:    []string{"repair_outlook_ost_problem*"}},
		{name: "IsOnline as a number is the wrong type", topic: "outlook", set: map[string]any{isOnline: int64(0)},
			notEval: map[string]string{"outlook_offline": "cannot compare double with string"},
			rems:    []string{"repair_outlook_ost_problem*"}},
		{name: "boot days as text is the wrong type", topic: "outlook", set: map[string]any{bootDays: "ten", isOnline: "No"},
			found: []string{"outlook_offline"}, notEval: map[string]string{"restart_overdue": "no such overload"},
			rems: []string{"set_outlook_online", "repair_outlook_ost_problem*"}},

		// OneDrive: each status the seed lists, and one that contains it.
		{name: "healthy", topic: "onedrive"},
		{name: "not installed", topic: "onedrive", set: map[string]any{oneDrive: "OneDrive is not installed"},
			found: []string{"onedrive_not_working"}, rems: []string{"repair_onedrive"}},
		{name: "not running", topic: "onedrive", set: map[string]any{oneDrive: "OneDrive is installed but not running"},
			found: []string{"onedrive_not_working"}, rems: []string{"repair_onedrive"}},
		{name: "no environment variable", topic: "onedrive", set: map[string]any{oneDrive: "OneDrive environment variable does not exist"},
			found: []string{"onedrive_not_working"}, rems: []string{"repair_onedrive"}},
		{name: "no folder", topic: "onedrive", set: map[string]any{oneDrive: "OneDrive folder is not present"},
			found: []string{"onedrive_not_working"}, rems: []string{"repair_onedrive"}},
		{name: "status contains a listed one", topic: "onedrive", set: map[string]any{oneDrive: "Error: OneDrive is not installed for this user"},
			found: []string{"onedrive_not_working"}, rems: []string{"repair_onedrive"}},
		{name: "null status", topic: "onedrive", set: map[string]any{oneDrive: nil},
			notEval: map[string]string{"onedrive_not_working": "is null"}},
		{name: "numeric status", topic: "onedrive", set: map[string]any{oneDrive: int64(3)},
			notEval: map[string]string{"onedrive_not_working": "evaluation failed"}},

		// Slow PC: one case per item of the seed's remediation list.
		{name: "healthy", topic: "slow_pc"},
		{name: "uptime", topic: "slow_pc", set: map[string]any{bootDays: int64(21)},
			found: []string{"restart_overdue"}, rems: []string{"restart_device"}},
		{name: "low disk", topic: "slow_pc", set: map[string]any{freeSpace: 4.05},
			found: []string{"low_disk_space"}, rems: []string{"disk_cleanup"}},
		{name: "disk exactly 6 GB", topic: "slow_pc", set: map[string]any{freeSpace: int64(6)},
			found: []string{"low_disk_space"}, rems: []string{"disk_cleanup"}},
		{name: "disk just above 6 GB", topic: "slow_pc", set: map[string]any{freeSpace: 6.01}},
		{name: "no performance data in 24h", topic: "slow_pc", set: map[string]any{freeSpace: nil},
			notEval: map[string]string{"low_disk_space": "free_space is null"}},
		{name: "startup apps", topic: "slow_pc", set: map[string]any{highCount: int64(2), highApps: "Spotify,Teams Machine-Wide Installer"},
			found: []string{"high_impact_startup_apps"}, rems: []string{"disable_startup_apps"},
			params: map[string]map[string]string{"disable_startup_apps": {"ApplicationNames": "Spotify,Teams Machine-Wide Installer"}}},
		{name: "startup apps, names not collected", topic: "slow_pc", set: map[string]any{highCount: int64(1), highApps: nil},
			found: []string{"high_impact_startup_apps"}, rems: []string{"disable_startup_apps"},
			notReady: map[string]string{"disable_startup_apps": "ApplicationNames: " + highApps + " is null"}},
		{name: "startup apps, second query failed", topic: "slow_pc", set: map[string]any{highCount: int64(1)}, del: []string{highApps},
			found: []string{"high_impact_startup_apps"}, rems: []string{"disable_startup_apps"},
			notReady: map[string]string{"disable_startup_apps": "no value for " + highApps}},
		{name: "gpo sum of doubles", topic: "slow_pc", set: map[string]any{gpoApplied: 8.5, gpoDC: 4.0},
			found: []string{"slow_group_policy"}, rems: []string{"update_group_policy_settings"}},
		{name: "gpo sum of int and double", topic: "slow_pc", set: map[string]any{gpoApplied: int64(8), gpoDC: 3.5},
			found: []string{"slow_group_policy"}, rems: []string{"update_group_policy_settings"}},
		{name: "gpo sum exactly 10", topic: "slow_pc", set: map[string]any{gpoApplied: json.Number("5"), gpoDC: json.Number("5.0")}},
		{name: "gpo each under 10, sum over", topic: "slow_pc", set: map[string]any{gpoApplied: 6.0, gpoDC: 5},
			found: []string{"slow_group_policy"}, rems: []string{"update_group_policy_settings"}},
		{name: "gpo one part null", topic: "slow_pc", set: map[string]any{gpoDC: nil},
			notEval: map[string]string{"slow_group_policy": gpoDC + " is null"}},
		{name: "office outdated", topic: "slow_pc", set: map[string]any{outdated: int64(1)},
			found: []string{"office_outdated"}, rems: []string{"repair_office_365"}},
		{name: "everything wrong", topic: "slow_pc",
			set: map[string]any{bootDays: int64(30), freeSpace: 1.5, highCount: int64(1), highApps: "Dropbox",
				gpoApplied: 9.0, gpoDC: 2.0, outdated: int64(1)},
			found:  []string{"restart_overdue", "low_disk_space", "high_impact_startup_apps", "slow_group_policy", "office_outdated"},
			rems:   []string{"restart_device", "disk_cleanup", "disable_startup_apps", "update_group_policy_settings", "repair_office_365"},
			params: map[string]map[string]string{"disable_startup_apps": {"ApplicationNames": "Dropbox"}}},

		// The rest of the legacy catalogue.
		{name: "healthy", topic: "printing"},
		{name: "spooler stopped, jobs stuck", topic: "printing", set: map[string]any{spooler: "Stopped", stuckJobs: int64(3)},
			found: []string{"spooler_stopped", "print_jobs_stuck"}, rems: []string{"restart_print_spooler", "clear_print_queue"}},
		{name: "jobs stuck", topic: "printing", set: map[string]any{stuckJobs: int64(1)},
			found: []string{"print_jobs_stuck"}, rems: []string{"clear_print_queue"}},
		{name: "healthy", topic: "device_bad_health"},
		{name: "saturated and crashing", topic: "device_bad_health",
			set:   map[string]any{cpuAvg: 91.5, memAvg: 95.0, crashes: int64(3), freeSpace: 3.2, bootDays: int64(11)},
			found: []string{"high_cpu_usage", "high_memory_usage", "low_disk_space", "frequent_crashes", "restart_overdue"},
			rems:  []string{"reduce_cpu_load", "free_memory", "disk_cleanup", "report_crashes", "restart_device"}},
		{name: "offline for a day", topic: "device_bad_health", set: map[string]any{cpuAvg: nil, memAvg: nil, freeSpace: nil},
			notEval: map[string]string{"high_cpu_usage": "null", "high_memory_usage": "null", "low_disk_space": "null"}},
		{name: "healthy", topic: "l1_device_checklist"},
		{name: "healthy mac", topic: "l1_device_checklist", set: map[string]any{platform: "macOS", osName: "macOS Sequoia", osVersion: "15.3.2"}},
		{name: "everything wrong", topic: "l1_device_checklist",
			set: map[string]any{lastSeen: "2026-03-07 09:00:00", bootDays: int64(15),
				memory: int64(4) << 30, osName: "Windows 10 Pro 22H2"},
			found: []string{"not_seen_recently", "restart_overdue", "low_installed_memory", "unsupported_os"},
			rems:  []string{"reconnect_device", "restart_device", "memory_upgrade", "upgrade_os"}},
		{name: "last seen as a time", topic: "l1_device_checklist", set: map[string]any{lastSeen: now.Add(-25 * time.Hour)},
			found: []string{"not_seen_recently"}, rems: []string{"reconnect_device"}},
		{name: "8 GiB is enough", topic: "l1_device_checklist", set: map[string]any{memory: int64(8) << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.topic+"/"+tt.name, func(t *testing.T) {
			p := program(t, s, tt.topic)
			fields := healthy(tt.topic)
			for k, v := range tt.set {
				fields[k] = v
			}
			for _, k := range tt.del {
				delete(fields, k)
			}
			out := p.EvaluateAt(fields, now)
			checkOutcome(t, p, fields, out, tt)
		})
	}
}

func checkOutcome(t *testing.T, p *topic.Program, fields map[string]any, out topic.Outcome, tt evalCase) {
	t.Helper()
	if got, want := len(out.Rules), len(p.Topic().Rules); got != want {
		t.Fatalf("got %d rule results, want %d", got, want)
	}
	for _, r := range out.Rules {
		want := topic.Clear
		if slices.Contains(tt.found, r.Rule) {
			want = topic.Found
		}
		reason, notEval := tt.notEval[r.Rule]
		if notEval {
			want = topic.NotEvaluated
		}
		if r.Status != want {
			t.Errorf("rule %s: got %s (%s), want %s", r.Rule, r.Status, r.Reason, want)
			continue
		}
		if notEval && !strings.Contains(r.Reason, reason) {
			t.Errorf("rule %s: got reason %q, want it to mention %q", r.Rule, r.Reason, reason)
		}
		if !notEval && r.Reason != "" {
			t.Errorf("rule %s: got reason %q for status %s", r.Rule, r.Reason, r.Status)
		}
		// The evidence is every field the rule reads that the results have, as given.
		reads, _ := p.RuleFields(r.Rule)
		for _, f := range reads {
			v, ok := fields[f]
			ev, has := r.Evidence[f]
			if ok != has || (ok && !sameValue(ev, v)) {
				t.Errorf("rule %s: evidence[%s] = %v (%v), want %v (%v)", r.Rule, f, ev, has, v, ok)
			}
		}
		if len(r.Evidence) > len(reads) {
			t.Errorf("rule %s: evidence %v has fields the rule does not read %v", r.Rule, r.Evidence, reads)
		}
	}
	var rems []string
	for _, s := range out.Remediations {
		id := s.ID
		if s.Generic {
			id += "*"
		}
		rems = append(rems, id)
		if want, ok := tt.notReady[s.ID]; ok {
			if s.Ready || !strings.Contains(s.NotReady, want) {
				t.Errorf("remediation %s: got ready %v (%q), want not ready because %q", s.ID, s.Ready, s.NotReady, want)
			}
		} else if !s.Ready {
			t.Errorf("remediation %s: not ready: %s", s.ID, s.NotReady)
		}
		if want := tt.params[s.ID]; len(want) > 0 || len(s.Params) > 0 {
			if !mapsEqual(s.Params, want) {
				t.Errorf("remediation %s: got params %v, want %v", s.ID, s.Params, want)
			}
		}
		def, _ := p.Topic().Remediation(s.ID)
		if s.RemoteAction != def.RemoteAction || s.Message != def.Message || s.Title != def.Title {
			t.Errorf("remediation %s: got %+v, want the topic's %+v", s.ID, s, def)
		}
	}
	if strings.Join(rems, ",") != strings.Join(tt.rems, ",") {
		t.Errorf("got remediations %v, want %v", rems, tt.rems)
	}
	if got := len(out.Findings); got != len(tt.found) {
		t.Errorf("got %d findings, want %d", got, len(tt.found))
	}
	for _, f := range out.Findings {
		i := slices.IndexFunc(p.Topic().Rules, func(r topic.Rule) bool { return r.ID == f.Rule })
		if !slices.Contains(tt.found, f.Rule) || i < 0 || !slices.Equal(f.Remediations, p.Topic().Rules[i].Remediations) {
			t.Errorf("finding %+v: want a found rule with the remediations it names", f)
		}
	}
}

func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSeedQueriesVerbatim checks that the seed topics carry the seeds' queries byte
// for byte (internal/nql keeps verbatim copies of them, checked against the seed),
// with only the columns that date their values added at the end of the list.
func TestSeedQueriesVerbatim(t *testing.T) {
	s := shipped(t)
	for topicID, queryID := range map[string]string{
		"outlook": "diagnose_outlook_issues", "onedrive": "diagnose_onedrive_issues", "slow_pc": "diagnose_slow_pc_issues",
	} {
		want, err := os.ReadFile(filepath.Join("../nql/testdata/seeds", queryID+".nql"))
		if err != nil {
			t.Fatal(err)
		}
		p := program(t, s, topicID)
		found := false
		for _, q := range p.Topic().Queries {
			if q.ID == "#"+queryID {
				found = true
				added, ok := strings.CutPrefix(q.NQL, strings.TrimSuffix(string(want), "\n")+",")
				if !ok {
					t.Errorf("%s: query %s differs from the seed:\ngot  %q\nwant %q and dating columns", topicID, q.ID, q.NQL, want)
					continue
				}
				for _, col := range strings.Split(added, ",") {
					col = strings.TrimSpace(col)
					dating := col == topic.LastSeenField || strings.HasPrefix(col, "remote_action.") &&
						(strings.HasSuffix(col, ".execution.time") || strings.HasSuffix(col, ".execution.status"))
					if !dating {
						t.Errorf("%s: query %s adds %q to the seed's list; only the columns that date values may be added", topicID, q.ID, col)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no query #%s", topicID, queryID)
		}
	}
}

// TestSeedTopicsShape checks the seed topics against the seed's tables: platforms,
// data-collection remote actions (by title) and one rule per remediation-list item.
func TestSeedTopicsShape(t *testing.T) {
	s := shipped(t)
	tests := []struct {
		topic          string
		dataCollection []string
		rules, generic int
	}{
		{"outlook", []string{"Get Microsoft Outlook online", "Get Microsoft Outlook plugin crash details"}, 4, 1},
		{"onedrive", []string{"Get OneDrive status"}, 1, 0},
		{"slow_pc", []string{"Get GPO startup impact", "Get startup impact"}, 5, 0},
	}
	for _, tt := range tests {
		p := program(t, s, tt.topic)
		tp := p.Topic()
		if !slices.Equal(tp.Platforms, []string{"Windows"}) {
			t.Errorf("%s: got platforms %v, want Windows", tt.topic, tp.Platforms)
		}
		var titles []string
		for _, id := range p.DataCollection() {
			a, _ := s.Allowlist().Get(id)
			titles = append(titles, a.Title)
		}
		if !slices.Equal(titles, tt.dataCollection) {
			t.Errorf("%s: got data collection %v, want %v", tt.topic, titles, tt.dataCollection)
		}
		if len(tp.Rules) != tt.rules || len(tp.GenericRemediations) != tt.generic {
			t.Errorf("%s: got %d rules and %d generic remediations, want %d and %d", tt.topic, len(tp.Rules), len(tp.GenericRemediations), tt.rules, tt.generic)
		}
	}
}

func TestShippedCatalogue(t *testing.T) {
	s := shipped(t)
	var ids []string
	for _, p := range s.Topics() {
		ids = append(ids, p.ID())
	}
	want := []string{"device_bad_health", "l1_device_checklist", "onedrive", "outlook", "printing", "slow_pc"}
	if !slices.Equal(ids, want) {
		t.Errorf("got topics %v, want %v", ids, want)
	}
	if q, ok := s.Query("#get_device_basic_infos"); !ok || q.Parameters != nil {
		t.Errorf("config/queries.yaml: got %+v, want #get_device_basic_infos in the set", q)
	}
	legacy := map[string]string{"device_bad_health": "device_bad_health", "l1_device_checklist": "l1_device_checklist", "printing": "print_issues"}
	for id, l := range legacy {
		if got := program(t, s, id).Topic().LegacyID; got != l {
			t.Errorf("%s: got legacy id %q, want %q", id, got, l)
		}
	}
}

func TestQueryFileClashesWithTopics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queries.yaml")
	body := "queries:\n  - id: \"#diagnose_outlook_issues\"\n    nql: devices | list device.name\n  - id: \"#broken\"\n    nql: devices | lisst device.name\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	files := shippedFiles
	files.Queries = path
	_, err := files.Load()
	var ps topic.Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("got %v, want two problems", err)
	}
	if ps[0].Path != "queries[0].id" || !strings.Contains(ps[0].Reason, "outlook.yaml") {
		t.Errorf("got %+v, want the clash with outlook.yaml", ps[0])
	}
	if ps[1].Path != "queries[1].nql" || !strings.Contains(ps[1].Reason, "#broken: NQL line 1, column") {
		t.Errorf("got %+v, want the NQL error with its position", ps[1])
	}
}

// sample is a topic and allow-list exercising what the seed topics do not: the flat
// fields map, a param computed from a field, a remediation suggested by two rules and
// also generic.
const sampleTopic = `id: sample
title: Sample
description: A sample topic.
platforms: [Windows]
data_collection: ["#get_thing"]
queries:
  - id: "#sample_device"
    parameters: {device_name: device.name}
    nql: |
      devices
      | where device.name == $device_name
      | list device.name, hardware.memory,
        remote_action.get_thing.execution.outputs.Count,
        remote_action.get_thing.execution.outputs.Names,
        remote_action.get_thing.execution.time, remote_action.get_thing.execution.status
  - id: "#sample_packages"
    parameters: {device_name: device.name}
    nql: |
      package.installed_packages
      | where device.name == $device_name
      | list device.name, package.name, package.version
rules:
  - id: many
    title: Many things
    when: remote_action.get_thing.execution.outputs.Count > 1
    remediations: [fix, tell]
  - id: contoso
    title: Contoso is installed
    when: fields["package.name"] == "Contoso"
    remediations: [fix]
  - id: big
    title: Big sum
    when: device.hardware.memory / 1000000000 + remote_action.get_thing.execution.outputs.Count >= 10
    remediations: [tell]
remediations:
  - id: fix
    title: Fix it
    remote_action: "#fix_thing"
    params:
      Names: remote_action.get_thing.execution.outputs.Names
      Count: remote_action.get_thing.execution.outputs.Count * 2
  - id: tell
    title: Tell
    message: Hello.
generic_remediations: [tell]
`

const sampleAllow = `remote_actions:
  - {id: "#get_thing", title: Get thing, purpose: data_collection, outputs: [Count, Names]}
  - id: "#fix_thing"
    title: Fix thing
    purpose: remediation
    inputs: [{name: Names, required: true}, {name: Count}]
`

func sample(t *testing.T) *topic.Program {
	t.Helper()
	tp, err := topic.Parse([]byte(sampleTopic))
	if err != nil {
		t.Fatal(err)
	}
	tp.File = "sample.yaml"
	cat, err := topic.New([]*topic.Topic{tp})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := allowlist.Parse([]byte(sampleAllow))
	if err != nil {
		t.Fatal(err)
	}
	s, err := topic.Compile(cat, allow)
	if err != nil {
		t.Fatal(err)
	}
	return program(t, s, "sample")
}

func TestDeduplicationAndParams(t *testing.T) {
	p := sample(t)
	const count, names = "remote_action.get_thing.execution.outputs.Count", "remote_action.get_thing.execution.outputs.Names"
	fields := map[string]any{"device.name": "PC-1", "device.hardware.memory": int64(8_000_000_000), count: int64(3), names: "a,b",
		"package.name": "Contoso", "package.version": "1.0"}
	out := p.EvaluateAt(fields, now)
	for _, r := range out.Rules {
		if r.Status != topic.Found {
			t.Errorf("rule %s: got %s (%s), want found", r.Rule, r.Status, r.Reason)
		}
	}
	if ev := out.Rules[1].Evidence; len(ev) != 1 || ev["package.name"] != "Contoso" {
		t.Errorf("contoso evidence: got %v, want package.name", ev)
	}
	if ev := out.Rules[2].Evidence; len(ev) != 2 || ev[count] != int64(3) || ev["device.hardware.memory"] != int64(8_000_000_000) {
		t.Errorf("big evidence: got %v", ev)
	}
	if len(out.Remediations) != 2 {
		t.Fatalf("got %d remediations, want fix and tell once each: %+v", len(out.Remediations), out.Remediations)
	}
	fix, tell := out.Remediations[0], out.Remediations[1]
	if fix.ID != "fix" || !slices.Equal(fix.Rules, []string{"many", "contoso"}) || fix.Generic || !fix.Ready {
		t.Errorf("fix: got %+v, want suggested by many and contoso, ready, not generic", fix)
	}
	if want := map[string]string{"Names": "a,b", "Count": "6"}; !mapsEqual(fix.Params, want) {
		t.Errorf("fix params: got %v, want %v", fix.Params, want)
	}
	if tell.ID != "tell" || !slices.Equal(tell.Rules, []string{"many", "big"}) || !tell.Generic || tell.Message != "Hello." {
		t.Errorf("tell: got %+v, want suggested by many and big, generic, with its message", tell)
	}

	// A list is not a string the Remote Actions API takes: suggested, not ready.
	fields[names] = []any{"a", "b"}
	out = p.EvaluateAt(fields, now)
	if fix := out.Remediations[0]; fix.Ready || !strings.Contains(fix.NotReady, "Names: yields a list") || fix.Params["Count"] != "6" {
		t.Errorf("fix with a list: got %+v, want not ready because of Names, Count still computed", fix)
	}

	// Nothing found: only the generic remediation, with no rule.
	out = p.EvaluateAt(map[string]any{"device.hardware.memory": int64(1_000_000_000), count: int64(0), names: "", "package.name": "Other"}, now)
	if len(out.Remediations) != 1 || out.Remediations[0].ID != "tell" || !out.Remediations[0].Generic || len(out.Remediations[0].Rules) != 0 {
		t.Errorf("nothing found: got %+v, want only the generic tell", out.Remediations)
	}
}

func TestOutcomeJSON(t *testing.T) {
	p := program(t, shipped(t), "slow_pc")
	fields := healthy("slow_pc")
	fields[highCount] = int64(2)
	fields[highApps] = "Spotify"
	b, err := json.Marshal(p.EvaluateAt(fields, now))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"status":"found"`, `"status":"clear"`,
		`"evidence":{"` + highCount + `":2}`,
		`"remote_action":"#disable_application_from_startup_menu","params":{"ApplicationNames":"Spotify"},"ready":true`,
		`"rules":["high_impact_startup_apps"]`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("got %s, want it to contain %s", b, want)
		}
	}
}

// TestConcurrentEvaluate runs evaluations in parallel (the worker's case), for -race.
func TestConcurrentEvaluate(t *testing.T) {
	p := program(t, shipped(t), "slow_pc")
	done := make(chan topic.Outcome)
	for i := range 8 {
		go func() {
			f := healthy("slow_pc")
			f[bootDays] = int64(i * 3)
			done <- p.EvaluateAt(f, now)
		}()
	}
	for range 8 {
		if out := <-done; len(out.Rules) != 5 {
			t.Errorf("got %d results", len(out.Rules))
		}
	}
}
