package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Results is one run of the suite as `dexbench -json FILE` saves it: the heading line
// it printed and its table, for `dexbench markdown` to turn into the documentation's
// table without anyone typing a figure.
type Results struct {
	Heading string `json:"heading"`
	Rows    []Row  `json:"rows"`
}

// The markers of the generated parts: docs/benchmarks.md holds the table between
// the first two, README.md the line between the last two.
const (
	tableBegin = "<!-- dexbench markdown: table -->"
	tableEnd   = "<!-- dexbench markdown: end of table -->"
	lineBegin  = "<!-- dexbench markdown: figures -->"
	lineEnd    = "<!-- dexbench markdown: end of figures -->"
)

func saveResults(path string, r Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// markdownMain is `dexbench markdown [-docs docs/benchmarks.md] [-readme README.md]
// results.json`: it prints the table and the figures line of a saved run, or, with
// -docs and -readme, writes them between the markers of those files.
func markdownMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dexbench markdown", flag.ContinueOnError)
	fs.SetOutput(stderr)
	docs := fs.String("docs", "", "write the table between the markers of this file (docs/benchmarks.md)")
	readme := fs.String("readme", "", "write the figures line between the markers of this file (README.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: dexbench markdown [-docs docs/benchmarks.md] [-readme README.md] results.json")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	table, line := MarkdownTable(r), FiguresLine(r)
	if *docs == "" && *readme == "" {
		_, err := fmt.Fprintf(stdout, "%s\n%s\n", table, line)
		return err
	}
	if *docs != "" {
		if err := replaceBetween(*docs, tableBegin, tableEnd, table); err != nil {
			return err
		}
	}
	if *readme != "" {
		if err := replaceBetween(*readme, lineBegin, lineEnd, line); err != nil {
			return err
		}
	}
	return nil
}

// MarkdownTable is the run's heading, as a code line, and its table.
func MarkdownTable(r Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "```\n%s\n```\n\n", r.Heading)
	b.WriteString("| scenario | metric | dexbridge | baseline | target |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		t := row.Target
		if t == "" {
			t = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cellText(row.Scenario), cellText(row.Metric), cellText(row.Dexbridge),
			cellText(row.Baseline), cellText(t))
	}
	return b.String()
}

// FiguresLine is the README's one line of figures: every row with a target, as
// "scenario metric: figure (target: met or NOT met)".
func FiguresLine(r Results) string {
	var parts []string
	for _, row := range r.Rows {
		if row.Target == "" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s (%s)", row.Scenario, row.Metric, row.Dexbridge, row.Target))
	}
	if len(parts) == 0 {
		return "No figure of this run has a target."
	}
	return "Figures of the recorded run ([benchmarks](docs/benchmarks.md)): " + strings.Join(parts, "; ") + "."
}

func cellText(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// replaceBetween writes text between the begin and end markers of the file.
func replaceBetween(path, begin, end, text string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(raw, []byte(begin))
	j := bytes.Index(raw, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q ... %q markers", path, begin, end)
	}
	var out bytes.Buffer
	out.Write(raw[:i+len(begin)])
	out.WriteString("\n" + strings.TrimRight(text, "\n") + "\n")
	out.Write(raw[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// ParseMarkdownTable reads back what MarkdownTable wrote between the table markers
// of a document: docs tests check the README's figures line against it.
func ParseMarkdownTable(doc string) (Results, error) {
	i := strings.Index(doc, tableBegin)
	j := strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		return Results{}, errors.New("no table markers")
	}
	var r Results
	lines := strings.Split(doc[i+len(tableBegin):j], "\n")
	for k, l := range lines {
		if strings.HasPrefix(l, "dexbench on ") && k > 0 && lines[k-1] == "```" {
			r.Heading = l
		}
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| scenario |") {
			continue
		}
		cells := splitRow(l)
		if len(cells) != 5 {
			return Results{}, fmt.Errorf("row %q: %d cells, want 5", l, len(cells))
		}
		if cells[4] == "-" {
			cells[4] = ""
		}
		r.Rows = append(r.Rows, Row{cells[0], cells[1], cells[2], cells[3], cells[4]})
	}
	return r, nil
}

// splitRow splits a markdown table row on the pipes cellText did not escape.
func splitRow(l string) []string {
	l = strings.TrimSuffix(strings.TrimPrefix(l, "| "), " |")
	var cells []string
	var cur strings.Builder
	for k := 0; k < len(l); k++ {
		switch {
		case l[k] == '\\' && k+1 < len(l) && l[k+1] == '|':
			cur.WriteByte('|')
			k++
		case strings.HasPrefix(l[k:], " | "):
			cells = append(cells, cur.String())
			cur.Reset()
			k += 2
		default:
			cur.WriteByte(l[k])
		}
	}
	return append(cells, cur.String())
}

// FiguresLineIn is the figures line between the README's markers.
func FiguresLineIn(readme string) (string, error) {
	i := strings.Index(readme, lineBegin)
	j := strings.Index(readme, lineEnd)
	if i < 0 || j < i {
		return "", errors.New("no figures markers")
	}
	return strings.TrimSpace(readme[i+len(lineBegin) : j]), nil
}
