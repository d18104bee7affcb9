package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckListsMissingTranslations: the shipped files are translated into every
// locale; taking some translations out of a topic and of the webhook messages makes
// check list them per locale and file, and still pass (English stands in).
func TestCheckListsMissingTranslations(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	topics := filepath.Join(dir, "topics")
	if err := os.Mkdir(topics, 0o700); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "topics", "*.yaml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "onedrive.yaml" {
			// No German title, and no French description.
			raw = []byte(strings.Replace(string(raw), "    title: Probleme mit Microsoft OneDrive\n", "", 1))
			raw = []byte(strings.Replace(string(raw), "    description: Identifie les problèmes liés à Microsoft OneDrive et répare OneDrive lorsqu'une anomalie est détectée.\n", "", 1))
		}
		if err := os.WriteFile(filepath.Join(topics, filepath.Base(f)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	shipped, err := os.ReadFile(filepath.Join(root, "config", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Replace(string(shipped), "            recovery: OneDrive läuft auf {{device}} wieder.\n", "", 1)
	for name, tc := range map[string]struct {
		topics, rules string
		want, not     []string
	}{
		"shipped": {filepath.Join(root, "topics"), string(shipped),
			[]string{"configuration ok", "translations de: complete\n", "translations fr: complete\n"}, []string{"missing"}},
		"some missing": {topics, rules, []string{
			"configuration ok",
			"translations de: 2 texts missing, said in English:\n" +
				"    " + filepath.Join(topics, "onedrive.yaml") + ": translations.de.title\n" +
				"    " + filepath.Join(dir, "webhooks.yaml") + ": sources[0].monitors[1].messages.de.recovery\n",
			"translations fr: 1 text missing, said in English:\n" +
				"    " + filepath.Join(topics, "onedrive.yaml") + ": translations.fr.description\n",
		}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "webhooks.yaml")
			if err := os.WriteFile(path, []byte(tc.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "dexbridge.yaml")
			body := "database_url: postgres://dexbridge@127.0.0.1:5432/dexbridge\n" +
				"topics_dir: " + tc.topics + "\n" +
				"remote_actions_file: " + filepath.Join(root, "config", "remote_actions.yaml") + "\n" +
				"queries_file: " + filepath.Join(root, "config", "queries.yaml") + "\n" +
				"webhooks:\n  file: " + path + "\n"
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}
			if err := Run(context.Background(), []string{"check", "-config", cfg}, env); err != nil {
				t.Fatalf("check: %v\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("got %q, want it to contain %q", out.String(), w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("got %q, want no %q", out.String(), w)
				}
			}
		})
	}
}
