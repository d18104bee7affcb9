package topic

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

// TestShippedNXQLForms: every shipped query has an NXQL form, each checks, and
// they are the forms package nxql proves equal to the NQL queries over one fleet.
func TestShippedNXQLForms(t *testing.T) {
	r := FilesIn(filepath.Join("..", "..")).Check()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(r.NXQL.Missing) > 0 {
		t.Fatalf("queries without an NXQL form: %v", r.NXQL.Missing)
	}
	raw, err := os.ReadFile(filepath.Join("..", "nxql", "testdata", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	proven, err := nxql.ParseForms(raw)
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string]nxql.Form{}
	for _, f := range r.NXQL.Forms {
		shipped[f.ID] = f
	}
	if len(shipped) != len(proven) {
		t.Errorf("%d forms shipped, %d proven", len(shipped), len(proven))
	}
	for _, p := range proven {
		s := shipped[p.ID]
		// Folded text keeps its line breaks where lines are more indented: compare
		// the words.
		for k := range s.NXQL {
			s.NXQL[k].Text = strings.Join(strings.Fields(s.NXQL[k].Text), " ")
		}
		for k := range p.NXQL {
			p.NXQL[k].Text = strings.Join(strings.Fields(p.NXQL[k].Text), " ")
		}
		if !reflect.DeepEqual(s, p) {
			t.Errorf("%s: the shipped form differs from internal/nxql/testdata/queries.yaml", p.ID)
		}
	}
}

// TestBrokenNXQLFormIsReported: a form that does not parse names its file and
// query, and stops the files from loading.
func TestBrokenNXQLFormIsReported(t *testing.T) {
	root := filepath.Join("..", "..")
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(root, "topics", "onedrive.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(raw), "(from device", "(from devices", 1)
	if broken == string(raw) {
		t.Fatal("onedrive.yaml has no NXQL form to break")
	}
	if err := os.WriteFile(filepath.Join(dir, "onedrive.yaml"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	f := FilesIn(root)
	f.Dir = dir
	r := f.Check()
	if r.NXQLErr == nil || !strings.Contains(r.NXQLErr.Error(), "onedrive.yaml") || !strings.Contains(r.NXQLErr.Error(), "queries[0].nxql") {
		t.Fatalf("got %v, want the broken form named", r.NXQLErr)
	}
	if _, err := f.Load(); err == nil {
		t.Fatal("Load accepted a broken NXQL form")
	}
}
