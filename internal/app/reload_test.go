package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestReloadReachesTheRemoteActionsWorker: an admin reload is obeyed by the topics
// and the remote-actions workers alike. A broken allow-list is refused by both and the
// remote actions in force do not change; a good set (here: printing retired, its topic
// and its remote actions) is put in force by both.
func TestReloadReachesTheRemoteActionsWorker(t *testing.T) {
	cfg := testConfig(t)
	root := testenv.RepoRoot(t)
	cfg.TopicsDir, cfg.RemoteActionsFile = t.TempDir(), filepath.Join(t.TempDir(), "remote_actions.yaml")
	entries, err := os.ReadDir(filepath.Join(root, "topics"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		copyFile(t, filepath.Join(root, "topics", e.Name()), filepath.Join(cfg.TopicsDir, e.Name()))
	}
	allow, err := os.ReadFile(filepath.Join(root, "config", "remote_actions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg.RemoteActionsFile, string(allow))
	base, _ := start(t, cfg, "ingress", "topics", "remoteactions")
	key := apiKey(t, cfg)
	call := func(method, path string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	actions := func() int {
		code, body := call(http.MethodGet, "/api/v1/remote-actions")
		if code != 200 {
			t.Fatalf("list remote actions: %d %v", code, body)
		}
		return len(body["remote_actions"].([]any))
	}
	before := actions()

	writeFile(t, cfg.RemoteActionsFile, "remote_actions: [oops")
	code, body := call(http.MethodPost, "/api/v1/admin/reload")
	if workers, _ := body["workers"].([]any); code != 422 || len(workers) != 2 {
		t.Fatalf("broken allow-list: got %d with %v, want 422 from both workers", code, body)
	}
	if got := actions(); got != before {
		t.Errorf("after a refused reload: %d remote actions, want the %d in force before", got, before)
	}

	var kept []string
	for _, block := range strings.Split(string(allow), "\n  - id:") {
		if !strings.Contains(block, "print") {
			kept = append(kept, block)
		}
	}
	writeFile(t, cfg.RemoteActionsFile, strings.Join(kept, "\n  - id:"))
	if err := os.Remove(filepath.Join(cfg.TopicsDir, "printing.yaml")); err != nil {
		t.Fatal(err)
	}
	if code, body = call(http.MethodPost, "/api/v1/admin/reload"); code != 200 {
		t.Fatalf("printing retired: got %d %v, want 200", code, body)
	}
	if got, want := actions(), before-3; got != want {
		t.Errorf("after printing was retired: %d remote actions, want %d", got, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(raw))
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
