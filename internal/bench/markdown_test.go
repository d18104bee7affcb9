package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMarkdownRoundTrip: the table written into a document reads back as the same
// rows, pipes and all, and the figures line names every row with a target.
func TestMarkdownRoundTrip(t *testing.T) {
	r := Results{Heading: "dexbench on vm: 2 cores", Rows: []Row{
		{"identify", "(b) / (a)", "0.61", "1", ">= 0.5: met"},
		{"identify", "a | pipe", "x", "-", ""},
		{"discovery-100k", "wall time / exports alone", "1.40", "1", "<= 1.3: NOT met"},
	}}
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte("before\n"+tableBegin+"\nold\n"+tableEnd+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceBetween(path, tableBegin, tableEnd, MarkdownTable(r)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "before\n") || !strings.HasSuffix(string(raw), tableEnd+"\nafter\n") || strings.Contains(string(raw), "old") {
		t.Fatalf("the markers' surroundings changed:\n%s", raw)
	}
	got, err := ParseMarkdownTable(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("read back %+v, want %+v", got, r)
	}
	line := FiguresLine(r)
	if !strings.Contains(line, "identify (b) / (a): 0.61 (>= 0.5: met)") || !strings.Contains(line, "1.3: NOT met") || strings.Contains(line, "pipe") {
		t.Errorf("figures line %q", line)
	}
}
