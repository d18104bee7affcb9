package allowlist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `remote_actions:
  - id: "#get_thing"
    title: Get thing
    purpose: data_collection
    outputs: [Thing]
  - id: "#fix_thing"
    title: Fix thing
    purpose: remediation
    platforms: [Windows]
    inputs:
      - {name: Names, required: true}
      - {name: Force}
`

func TestLoadShippedList(t *testing.T) {
	l, err := LoadFile("../../config/remote_actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Purpose{
		"#get_outlook_online_windows":               DataCollection,
		"#get_outlook_plugin_crash_details_windows": DataCollection,
		"#get_onedrive_status":                      DataCollection,
		"#get_startup_impact_windows":               DataCollection,
		"#get_gpo_startup_impact_windows":           DataCollection,
		"#get_printer_status_windows":               DataCollection,
		"#set_outlook_online":                       Remediation,
		"#set_outlook_plugins":                      Remediation,
		"#repair_office_365":                        Remediation,
		"#repair_outlook_ost_problem":               Remediation,
		"#repair_onedrive":                          Remediation,
		"#disk_cleanup":                             Remediation,
		"#disable_application_from_startup_menu":    Remediation,
		"#update_group_policy_settings":             Remediation,
		"#restart_print_spooler":                    Remediation,
		"#clear_print_queue":                        Remediation,
	}
	if got := len(l.List()); got != len(want) {
		t.Errorf("got %d remote actions, want %d", got, len(want))
	}
	for id, p := range want {
		a, ok := l.Get(id)
		if !ok {
			t.Errorf("%s: not in the list", id)
			continue
		}
		if a.Purpose != p {
			t.Errorf("%s: got purpose %s, want %s", id, a.Purpose, p)
		}
	}
	in, ok := mustGet(t, l, "#disable_application_from_startup_menu").Input("ApplicationNames")
	if !ok || !in.Required {
		t.Errorf("ApplicationNames: got %+v, %v; want a required input", in, ok)
	}
	if a := mustGet(t, l, "#get_printer_status_windows"); !a.HasOutput("StuckJobs") || a.HasOutput("Nope") {
		t.Errorf("printer status outputs: got %v", a.Outputs)
	}
}

func mustGet(t *testing.T, l *List, id string) *RemoteAction {
	t.Helper()
	a, ok := l.Get(id)
	if !ok {
		t.Fatalf("%s not in the list", id)
	}
	return a
}

func TestParseSample(t *testing.T) {
	l, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	fix := mustGet(t, l, "#fix_thing")
	if in, ok := fix.Input("Force"); !ok || in.Required {
		t.Errorf("Force: got %+v, %v; want an optional input", in, ok)
	}
	if !fix.SupportsPlatform("Windows") || fix.SupportsPlatform("macOS") {
		t.Errorf("fix platforms: got %v", fix.Platforms)
	}
	get := mustGet(t, l, "#get_thing")
	if !get.SupportsPlatform("macOS") {
		t.Error("an action without platforms must support every platform")
	}
	if ids := []string{l.List()[0].ID, l.List()[1].ID}; ids[0] != "#fix_thing" || ids[1] != "#get_thing" {
		t.Errorf("got order %v, want sorted by id", ids)
	}
}

func TestBadListsAreRefusedWithFileAndKey(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", strings.Replace(sample, "title: Get thing", "title: Get thing\n    colour: blue", 1), []string{"remote_actions[0]", "colour"}},
		{"bad purpose", strings.Replace(sample, "purpose: data_collection", "purpose: fixing", 1), []string{"remote_actions[0].purpose"}},
		{"bad id", strings.Replace(sample, `"#get_thing"`, `"get thing"`, 1), []string{"remote_actions[0].id"}},
		{"missing title", strings.Replace(sample, "    title: Fix thing\n", "", 1), []string{"remote_actions[1]", "title"}},
		{"wrong type", strings.Replace(sample, "required: true", "required: yes please", 1), []string{"remote_actions[1].inputs[0].required"}},
		{"duplicate id", strings.Replace(sample, `"#fix_thing"`, `"#get_thing"`, 1), []string{"remote_actions[1].id", "duplicate"}},
		{"duplicate input", strings.Replace(sample, "{name: Force}", "{name: Names}", 1), []string{"remote_actions[1].inputs[1].name", "duplicate"}},
		{"two problems", strings.Replace(strings.Replace(sample, "purpose: remediation", "purpose: x", 1), "purpose: data_collection", "purpose: y", 1),
			[]string{"remote_actions[0].purpose", "remote_actions[1].purpose"}},
		{"not yaml", "remote_actions: [", nil},
		{"empty list", "remote_actions: []", []string{"remote_actions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "remote_actions.yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFile(path)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path+": ") {
					t.Errorf("line %q does not name the file", line)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
