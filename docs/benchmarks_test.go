package docs

import (
	"os"
	"testing"

	"github.com/dexbridge/dexbridge/internal/bench"
)

// TestReadmeFiguresMatchTheBenchmarkTable: the README's figures line is the one
// `dexbench markdown` makes of the table in benchmarks.md, so neither is typed by
// hand and they cannot drift apart.
func TestReadmeFiguresMatchTheBenchmarkTable(t *testing.T) {
	doc, err := os.ReadFile("benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	r, err := bench.ParseMarkdownTable(string(doc))
	if err != nil {
		t.Fatalf("benchmarks.md: %v", err)
	}
	if len(r.Rows) == 0 || r.Heading == "" {
		t.Fatalf("benchmarks.md: the generated table has no heading or rows")
	}
	line, err := bench.FiguresLineIn(string(readme))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if want := bench.FiguresLine(r); line != want {
		t.Errorf("README.md figures line:\n%s\nwant (from benchmarks.md):\n%s", line, want)
	}
}
