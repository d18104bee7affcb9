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
	return QueriesIn(t, filepath.Join(RepoRoot(t), "config", "queries.yaml"))
}

// QueriesIn reads the queries of YAML files that list them (the queries file, a
// topic) and returns their NQL by id; a later file's id wins.
func QueriesIn(t testing.TB, files ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
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
			t.Fatalf("%s: %v", f, err)
		}
		for _, q := range doc.Queries {
			out[q.ID] = q.NQL
		}
	}
	return out
}
