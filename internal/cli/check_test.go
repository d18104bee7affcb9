package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkWith runs `dexbridge check` with a configuration file naming topicsDir and the
// shipped allow-list and generic queries.
func checkWith(t *testing.T, topicsDir string) (string, error) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "dexbridge.yaml")
	body := "database_url: postgres://dexbridge@127.0.0.1:5432/dexbridge\n" +
		"topics_dir: " + topicsDir + "\n" +
		"remote_actions_file: " + filepath.Join(root, "config", "remote_actions.yaml") + "\n" +
		"queries_file: " + filepath.Join(root, "config", "queries.yaml") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
	err = Run(context.Background(), []string{"check", "-config", cfg}, env)
	return out.String(), err
}

func TestCheckShippedTopics(t *testing.T) {
	root, _ := filepath.Abs("../..")
	out, err := checkWith(t, filepath.Join(root, "topics"))
	if err != nil {
		t.Fatalf("check of the shipped topics: %v", err)
	}
	if !strings.Contains(out, "configuration ok") || !strings.Contains(out, "6 topics, 16 remote actions") {
		t.Errorf("got %q, want the counts", out)
	}
}

// TestCheckRefusesBadTopics breaks the shipped topics four ways at once (an unknown
// field in a rule, an unknown remote action, an NQL syntax error, a parameter left
// unfilled): check fails and names the file, path and reason of each.
func TestCheckRefusesBadTopics(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(root, "topics", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped topics: %v", err)
	}
	edits := map[string][2]string{
		"slow_pc.yaml":  {"when: free_space <= 6", "when: free_space_GB <= 6"},
		"outlook.yaml":  {`remote_action: "#set_outlook_online"`, `remote_action: "#set_outlook_offline"`},
		"onedrive.yaml": {"| where device.name == $device_name", "| where device.name == $device_name)"},
		"printing.yaml": {"    parameters:\n      device_name: device.name\n", ""},
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		body := string(raw)
		if e, ok := edits[filepath.Base(f)]; ok {
			if !strings.Contains(body, e[0]) {
				t.Fatalf("%s has no %q", f, e[0])
			}
			body = strings.Replace(body, e[0], e[1], 1)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = checkWith(t, dir)
	if err == nil {
		t.Fatal("check accepted broken topics")
	}
	msg := err.Error()
	for _, want := range []string{
		filepath.Join(dir, "slow_pc.yaml") + ": rules[1].when: rule low_disk_space: column 1: undeclared reference to 'free_space_GB'",
		filepath.Join(dir, "outlook.yaml") + ": remediations[0].remote_action: remote action #set_outlook_offline is not in",
		filepath.Join(dir, "onedrive.yaml") + ": queries[0].nql: query #diagnose_onedrive_issues: NQL line 2, column 36",
		filepath.Join(dir, "printing.yaml") + ": queries[0].parameters: query #diagnose_print_issues uses $device_name",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("got:\n%s\nwant it to contain %q", msg, want)
		}
	}
	if n := strings.Count(msg, "\n  "+dir); n != 4 {
		t.Errorf("got %d problems, want 4:\n%s", n, msg)
	}
}
