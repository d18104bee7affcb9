package topic_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// edit returns the shipped topic file with each old string replaced once; it fails
// the test when an old string is not there, so a stale case cannot pass silently.
func edit(t *testing.T, file string, pairs ...string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(topicsDir, file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s has no %q", file, pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// want is one expected problem: its file (base name), path and a part of its reason.
type want struct{ file, path, reason string }

func compileDir(t *testing.T, files map[string]string) error {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := topic.LoadDir(dir)
	if err != nil {
		t.Fatalf("the topic files themselves are refused: %v", err)
	}
	allow, err := allowlist.LoadFile(allowFile)
	if err != nil {
		t.Fatal(err)
	}
	set, err := topic.Compile(cat, allow)
	if err == nil {
		t.Fatal("got no error")
	}
	if set != nil {
		t.Error("got a set with the error: a bad set must not be usable")
	}
	return err
}

func TestBadTopicsAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		pairs []string
		want  []want
	}{
		{"unknown field in a rule", "slow_pc.yaml",
			[]string{"when: free_space <= 6", "when: free_space_GB <= 6"},
			[]want{{"slow_pc.yaml", "rules[1].when", "rule low_disk_space: column 1: undeclared reference to 'free_space_GB' (did you mean 'free_space'?)"}}},
		{"unknown field in a param", "slow_pc.yaml",
			[]string{"ApplicationNames: remote_action.get_startup_impact_windows.execution.outputs.HighImpactApplications",
				"ApplicationNames: remote_action.get_startup_impact_windows.execution.outputs.HighImpactApps"},
			[]want{{"slow_pc.yaml", "remediations[2].params.ApplicationNames", "undeclared reference"}}},
		{"unknown field through fields", "slow_pc.yaml",
			[]string{"when: free_space <= 6", `when: fields["free_space_GB"] <= 6`},
			[]want{{"slow_pc.yaml", "rules[1].when", `fields["free_space_GB"]: no query of this topic lists free_space_GB`}}},
		{"computed fields key", "slow_pc.yaml",
			[]string{"when: free_space <= 6", `when: fields["free_" + "space"] <= 6`},
			[]want{{"slow_pc.yaml", "rules[1].when", "literal name"}}},
		{"rule syntax error", "outlook.yaml",
			[]string{"when: device.boot.days_since_last_full_boot > 10", "when: device.boot.days_since_last_full_boot >> 10"},
			[]want{{"outlook.yaml", "rules[2].when", "rule restart_overdue: column"}}},
		{"rule that is not a condition", "outlook.yaml",
			[]string{"when: outdated_office_packages >= 1", "when: outdated_office_packages + 1"},
			[]want{{"outlook.yaml", "rules[3].when", "yields double, want bool"}}},
		{"unknown remote action", "slow_pc.yaml",
			[]string{`remote_action: "#disk_cleanup"`, `remote_action: "#disk_clean_up"`},
			[]want{{"slow_pc.yaml", "remediations[1].remote_action", "remote action #disk_clean_up is not in ../../config/remote_actions.yaml"}}},
		{"remediation that collects data", "onedrive.yaml",
			[]string{`remote_action: "#repair_onedrive"`, `remote_action: "#get_onedrive_status"`},
			[]want{{"onedrive.yaml", "remediations[0].remote_action", "#get_onedrive_status is a data_collection action, want remediation"}}},
		{"data collection that remediates", "outlook.yaml",
			[]string{`  - "#get_outlook_online_windows"`, `  - "#set_outlook_online"`},
			[]want{
				{"outlook.yaml", "data_collection[0]", "#set_outlook_online is a remediation action, want data_collection"},
				{"outlook.yaml", "queries[0].nql", "query #diagnose_outlook_issues reads outputs of #get_outlook_online_windows, which data_collection does not list"},
			}},
		{"unknown data collection", "onedrive.yaml",
			[]string{`  - "#get_onedrive_status"`, `  - "#get_onedrive_state"`},
			[]want{
				{"onedrive.yaml", "data_collection[0]", "#get_onedrive_state is not in"},
				{"onedrive.yaml", "queries[0].nql", "which data_collection does not list"},
			}},
		{"undeclared output", "outlook.yaml",
			[]string{"execution.outputs.IsOnline,", "execution.outputs.IsOnLine,"},
			[]want{
				{"outlook.yaml", "queries[0].nql", "query #diagnose_outlook_issues reads output IsOnLine of #get_outlook_online_windows, which declares only IsOnline"},
				{"outlook.yaml", "rules[0].when", "undeclared reference to 'remote_action.get_outlook_online_windows.execution.outputs.IsOnline'"},
			}},
		{"NQL syntax error", "onedrive.yaml",
			[]string{"| where device.name == $device_name", "| where device.name = $device_name"},
			[]want{{"onedrive.yaml", "queries[0].nql", "query #diagnose_onedrive_issues: NQL line 2, column 21: unexpected \"=\""}}},
		{"NQL unknown field", "printing.yaml",
			[]string{"device.name,\n", "device.nam,\n"},
			[]want{{"printing.yaml", "queries[0].nql", "query #diagnose_print_issues: NQL line 3"}}},
		{"missing parameter", "outlook.yaml",
			[]string{"    parameters:\n      device_name: device.name\n", ""},
			[]want{{"outlook.yaml", "queries[0].parameters", "query #diagnose_outlook_issues uses $device_name, which parameters does not fill"}}},
		{"parameter the query does not use", "onedrive.yaml",
			[]string{"      device_name: device.name\n", "      device_name: device.name\n      user_name: device.uid\n"},
			[]want{{"onedrive.yaml", "queries[0].parameters.user_name", "query #diagnose_onedrive_issues has no $user_name"}}},
		{"unknown input", "slow_pc.yaml",
			[]string{"      ApplicationNames: remote_action", "      Applications: remote_action"},
			[]want{
				{"slow_pc.yaml", "remediations[2].params.Applications", `remote action #disable_application_from_startup_menu has no input "Applications" (it declares ApplicationNames)`},
				{"slow_pc.yaml", "remediations[2].params", "requires input ApplicationNames, which params does not fill"},
			}},
		{"missing required input", "slow_pc.yaml",
			[]string{"    params:\n      # Read by the second query (see the top); a comma-separated list of names.\n      ApplicationNames: remote_action.get_startup_impact_windows.execution.outputs.HighImpactApplications\n", ""},
			[]want{{"slow_pc.yaml", "remediations[2].params", "remote action #disable_application_from_startup_menu requires input ApplicationNames"}}},
		{"input of an action without inputs", "onedrive.yaml",
			[]string{`    remote_action: "#repair_onedrive"`, `    remote_action: "#repair_onedrive"` + "\n    params: {Force: '\"yes\"'}"},
			[]want{{"onedrive.yaml", "remediations[0].params.Force", "has no input \"Force\" (it declares no inputs)"}}},
		{"output without the time of its collection", "onedrive.yaml",
			[]string{"        remote_action.get_onedrive_status.execution.time,\n", ""},
			[]want{{"onedrive.yaml", "queries[0].nql", "lists outputs of #get_onedrive_status (OneDriveStatus) without remote_action.get_onedrive_status.execution.time: list it too"}}},
		{"output without the status of its collection", "printing.yaml",
			[]string{"        remote_action.get_printer_status_windows.execution.status,\n", ""},
			[]want{{"printing.yaml", "queries[0].nql", "without remote_action.get_printer_status_windows.execution.status"}}},
		{"platform the action does not run on", "printing.yaml",
			[]string{"platforms: [Windows]", "platforms: [Windows, macOS]"},
			[]want{
				{"printing.yaml", "data_collection[0]", "remote action #get_printer_status_windows does not run on macOS"},
				{"printing.yaml", "remediations[0].remote_action", "remote action #restart_print_spooler does not run on macOS"},
				{"printing.yaml", "remediations[1].remote_action", "remote action #clear_print_queue does not run on macOS"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compileDir(t, map[string]string{tt.file: edit(t, tt.file, tt.pairs...)})
			var ps topic.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got %T %v, want topic.Problems", err, err)
			}
			checkProblems(t, ps, tt.want)
		})
	}
}

// checkProblems checks that every problem is wanted and every wanted one is there.
func checkProblems(t *testing.T, ps topic.Problems, wants []want) {
	t.Helper()
	matched := make([]bool, len(ps))
	for _, w := range wants {
		ok := false
		for i, p := range ps {
			if filepath.Base(p.File) == w.file && p.Path == w.path && strings.Contains(p.Reason, w.reason) {
				ok, matched[i] = true, true
			}
		}
		if !ok {
			t.Errorf("no problem %s: %s: ...%s...; got:\n%v", w.file, w.path, w.reason, ps)
		}
	}
	for i, p := range ps {
		if !matched[i] {
			t.Errorf("unexpected problem %v", p)
		}
		if !strings.HasPrefix(p.Error(), p.File+": "+p.Path+": ") {
			t.Errorf("problem %q does not start with its file and path", p.Error())
		}
	}
}

// TestEveryProblemIsReported breaks three topics in different ways at once: all the
// problems come back, not just the first.
func TestEveryProblemIsReported(t *testing.T) {
	err := compileDir(t, map[string]string{
		"outlook.yaml": edit(t, "outlook.yaml",
			`remote_action: "#set_outlook_plugins"`, `remote_action: "#set_outlook_pluginz"`,
			"when: device.boot.days_since_last_full_boot > 10", "when: device.boot.days > 10"),
		"onedrive.yaml": edit(t, "onedrive.yaml", "| list collector.uid", "| lust collector.uid"),
		"slow_pc.yaml":  edit(t, "slow_pc.yaml", "    parameters:\n      device_name: device.name\n    nql: |\n      devices\n", "    nql: |\n      devices\n"),
		"printing.yaml": edit(t, "printing.yaml"), // a good one among them
	})
	var ps topic.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want topic.Problems", err)
	}
	checkProblems(t, ps, []want{
		{"outlook.yaml", "rules[2].when", "undeclared reference to 'device.boot.days'"},
		{"outlook.yaml", "remediations[1].remote_action", "#set_outlook_pluginz is not in"},
		{"onedrive.yaml", "queries[0].nql", "query #diagnose_onedrive_issues: NQL line 3, column 3"},
		{"slow_pc.yaml", "queries[1].parameters", "query #get_startup_impact_applications uses $device_name"},
	})
}

func TestShippedTopicsCompile(t *testing.T) {
	s, err := shippedFiles.Load()
	if err != nil {
		t.Fatalf("got %v", err)
	}
	if n := len(s.Topics()); n != 6 {
		t.Errorf("got %d topics, want 6", n)
	}
}

func TestLoadReportsBothFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "remote_actions.yaml")
	if err := os.WriteFile(bad, []byte("remote_actions: [{id: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := topic.Files{Dir: filepath.Join(dir, "no-topics"), RemoteActions: bad}.Load()
	if err == nil || !strings.Contains(err.Error(), "no *.yaml files") || !strings.Contains(err.Error(), bad+": remote_actions[0]") {
		t.Errorf("got %v, want both the topics and the allow-list problems", err)
	}
}
