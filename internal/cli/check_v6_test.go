package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNamesQueriesAV6InstanceCannotRun: with a v6 instance configured, a
// topic query without an NXQL form is reported; without one, it is not.
func TestCheckNamesQueriesAV6InstanceCannotRun(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(root, "topics", "*.yaml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		body := string(raw)
		if filepath.Base(f) == "onedrive.yaml" { // drop its NXQL form: the block ends at rules:
			i, j := strings.Index(body, "    nxql:\n"), strings.Index(body, "\nrules:")
			if i < 0 || j < i {
				t.Fatal("onedrive.yaml has no NXQL form before its rules")
			}
			body = body[:i] + body[j+1:]
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(instances string) (string, error) {
		cfg := filepath.Join(t.TempDir(), "dexbridge.yaml")
		body := "database_url: postgres://dexbridge@127.0.0.1:5432/dexbridge\n" +
			"topics_dir: " + dir + "\n" +
			"remote_actions_file: " + filepath.Join(root, "config", "remote_actions.yaml") + "\n" +
			"queries_file: " + filepath.Join(root, "config", "queries.yaml") + "\n" + instances
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		env := Env{Getenv: func(k string) string {
			return map[string]string{"NEXTHINK_DC_USERNAME": "u", "NEXTHINK_DC_PASSWORD": "p"}[k]
		}, Stdout: &out, Stderr: &out}
		err := Run(context.Background(), []string{"check", "-config", cfg}, env)
		return out.String(), err
	}
	if out, err := run(""); err != nil {
		t.Fatalf("without a v6 instance: %v (%s)", err, out)
	}
	_, err = run("instances:\n  - {name: dc, type: v6, portal_url: \"https://portal.example.com\"}\n")
	if err == nil || !strings.Contains(err.Error(), "#diagnose_onedrive_issues") || !strings.Contains(err.Error(), "instance(s) dc") {
		t.Fatalf("got %v, want the query without a form named", err)
	}
}
