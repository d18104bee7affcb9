package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWebhookRules(t *testing.T) {
	root, _ := filepath.Abs("../..")
	shipped, err := os.ReadFile(filepath.Join(root, "config", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	unbound := strings.Replace(string(shipped), "    instance: eu\n", "", 1)
	two := "instances:\n  - {name: eu, api_url: https://eu.example.com, token_url: https://eu.example.com}\n" +
		"  - {name: us, api_url: https://us.example.com, token_url: https://us.example.com}\n"
	usOnly := "instances:\n  - {name: us, api_url: https://us.example.com, token_url: https://us.example.com}\n"
	tests := []struct {
		name      string
		rules     string
		instances string   // YAML of the configuration's instances
		want      []string // "" for success
	}{
		{"shipped", string(shipped), "", nil},
		{"shipped, two instances", string(shipped), two, nil},
		{"shipped, without its instance", string(shipped), usOnly, []string{"webhooks:", "sources[0].instance", `bound to instance "eu", which is not configured`}},
		{"unbound, one instance", unbound, usOnly, nil},
		{"unbound, two instances", unbound, two, []string{"webhooks:", "sources[0].instance", `source "nexthink" is bound to no instance, but 2 are configured (eu, us)`}},
		{"unknown key", strings.Replace(string(shipped), "    time_zone: UTC\n", "    time_zone: UTC\n    colour: red\n", 1), "", []string{"webhooks:", "sources[0]", "colour"}},
		{"unknown topic", strings.Replace(string(shipped), "topic: onedrive", "topic: one_drive", 1), "", []string{"webhooks:", `no topic "one_drive"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			rules := filepath.Join(dir, "webhooks.yaml")
			if err := os.WriteFile(rules, []byte(tt.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "dexbridge.yaml")
			body := "database_url: postgres://dexbridge@127.0.0.1:5432/dexbridge\n" +
				"topics_dir: " + filepath.Join(root, "topics") + "\n" +
				"remote_actions_file: " + filepath.Join(root, "config", "remote_actions.yaml") + "\n" +
				"queries_file: " + filepath.Join(root, "config", "queries.yaml") + "\n" +
				"webhooks:\n  file: " + rules + "\n" + tt.instances
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			env := Env{Getenv: func(k string) string {
				if strings.HasPrefix(k, "NEXTHINK_") {
					return "credential-of-" + k // the instances' client id and secret
				}
				return ""
			}, Stdout: &out, Stderr: &out}
			err := Run(context.Background(), []string{"check", "-config", cfg}, env)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want the shipped rules accepted", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got ok, want a refusal naming %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), rules) {
				t.Errorf("got %q, want it to name the file", err)
			}
		})
	}
}
