package topic

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// TextPos is where a text value (a query's NQL) is in its YAML file, so that a
// position inside the text, an NQL error's, can be given in the file.
type TextPos struct {
	Line   int // of the value; for a block (| or >), of its indicator
	Column int
	block  bool // literal or folded: the text starts on the next line
	indent int  // of a block's lines
	quoted bool
}

// In returns the line and column in the file of line and column (1-based) of the
// text.
func (p TextPos) In(line, col int) (int, int) {
	switch {
	case p.block:
		return p.Line + line, p.indent + col
	case line == 1:
		if p.quoted {
			col++
		}
		return p.Line, p.Column + col - 1
	}
	return p.Line + line - 1, col
}

// locateNQL records in qs, decoded from raw, where each query's NQL is.
func locateNQL(raw []byte, qs []Query) {
	var doc struct {
		Queries []struct {
			NQL yaml.Node `yaml:"nql"`
		} `yaml:"queries"`
	}
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Queries) != len(qs) {
		return
	}
	lines := strings.Split(string(raw), "\n")
	for i, q := range doc.Queries {
		n := &q.NQL
		p := TextPos{Line: n.Line, Column: n.Column}
		switch n.Style {
		case yaml.LiteralStyle, yaml.FoldedStyle:
			p.block = true
			if n.Line < len(lines) {
				l := lines[n.Line] // the first line of the text
				p.indent = len(l) - len(strings.TrimLeft(l, " "))
			}
		case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
			p.quoted = true
		}
		qs[i].NQLAt = p
	}
}
