package nxql

// node is one s-expression: a list or an atom (symbol, string, #"string").
type node struct {
	list   []*node
	isList bool
	tok    token // the atom, or the opening parenthesis of a list
}

func (n *node) pos() Pos { return n.tok.pos }

// head is the symbol a list starts with, "" when it starts with anything else.
func (n *node) head() string {
	if !n.isList || len(n.list) == 0 || n.list[0].isList || n.list[0].tok.kind != tokSymbol {
		return ""
	}
	return n.list[0].tok.text
}

func (n *node) describe() string {
	switch {
	case n.isList && n.head() != "":
		return "(" + n.head() + " ...)"
	case n.isList:
		return "a list"
	case n.tok.kind == tokString:
		return `"` + n.tok.text + `"`
	}
	return n.tok.text
}

// Limits that keep a hostile query from exhausting the stack or the memory.
const (
	maxQueryBytes = 256 << 10
	maxDepth      = 64
	maxNodes      = 100_000
)

// read parses the whole text as exactly one s-expression.
func read(src string) (*node, error) {
	if len(src) > maxQueryBytes {
		return nil, errorAt(Pos{Line: 1, Column: 1}, "query longer than %d bytes", maxQueryBytes)
	}
	r := &reader{lx: newLexer(src)}
	if err := r.advance(); err != nil {
		return nil, err
	}
	if r.tok.kind == tokEOF {
		return nil, errorAt(r.tok.pos, "empty query: want (select ...)")
	}
	n, err := r.expr(0)
	if err != nil {
		return nil, err
	}
	if r.tok.kind != tokEOF {
		return nil, errorAt(r.tok.pos, "unexpected %q after the end of the query", r.tok.text)
	}
	return n, nil
}

type reader struct {
	lx    *lexer
	tok   token
	nodes int
}

func (r *reader) advance() error {
	t, err := r.lx.next()
	if err != nil {
		return err
	}
	r.tok = t
	return nil
}

func (r *reader) expr(depth int) (*node, error) {
	r.nodes++
	if r.nodes > maxNodes {
		return nil, errorAt(r.tok.pos, "query has more than %d elements", maxNodes)
	}
	switch r.tok.kind {
	case tokRParen:
		return nil, errorAt(r.tok.pos, "unexpected ')'")
	case tokEOF:
		return nil, errorAt(r.tok.pos, "unexpected end of the query")
	case tokLParen:
		if depth >= maxDepth {
			return nil, errorAt(r.tok.pos, "query nested deeper than %d levels", maxDepth)
		}
		n := &node{isList: true, tok: r.tok}
		if err := r.advance(); err != nil {
			return nil, err
		}
		for r.tok.kind != tokRParen {
			if r.tok.kind == tokEOF {
				return nil, errorAt(n.tok.pos, "unbalanced parentheses: '(' is never closed")
			}
			c, err := r.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			n.list = append(n.list, c)
		}
		if err := r.advance(); err != nil {
			return nil, err
		}
		return n, nil
	}
	n := &node{tok: r.tok}
	return n, r.advance()
}
