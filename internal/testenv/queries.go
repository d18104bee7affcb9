package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// SavedQueries reads config/queries.yaml, the queries operators save in their tenant
// (and nxsim loads), and returns their NQL by id, for tests that keep it in step with
// the code.
func SavedQueries(t testing.TB) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), "config", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Queries []struct {
			ID  string `yaml:"id"`
			NQL string `yaml:"nql"`
		} `yaml:"queries"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	for _, q := range doc.Queries {
		saved[q.ID] = q.NQL
	}
	return saved
}
