package nql

import (
	"strconv"
	"strings"
	"time"
)

// maxDepth bounds expression nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// Parse parses src. It checks syntax only; Compile resolves names. Errors are *Error.
func Parse(src string) (*Query, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

func (p *parser) expectPunct(s string) (token, error) {
	t := p.next()
	if t.kind != tPunct || t.text != s {
		return t, t.pos.errorf("expected %q, got %s", s, t.describe())
	}
	return t, nil
}

func unexpected(t token) *Error {
	if t.kind == tEOF {
		return t.pos.errorf("unexpected end of query")
	}
	return t.pos.errorf("unexpected %s", t.describe())
}

func (p *parser) query() (*Query, error) {
	t := p.next()
	if t.kind != tIdent {
		return nil, t.pos.errorf("expected a table name, got %s", t.describe())
	}
	q := &Query{Table: t.text, TablePos: t.pos}
	tf, err := p.timeframe()
	if err != nil {
		return nil, err
	}
	q.Timeframe = tf
	for {
		t := p.next()
		if t.kind == tEOF {
			return q, nil
		}
		if t.kind != tPunct || t.text != "|" {
			return nil, unexpected(t)
		}
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		q.Clauses = append(q.Clauses, c)
	}
}

// timeframe parses an optional `[during] past <duration>`.
func (p *parser) timeframe() (*Timeframe, error) {
	start := p.peek()
	if p.isWord("during") {
		p.next()
		if !p.isWord("past") {
			t := p.peek()
			return nil, t.pos.errorf("expected \"past\" after \"during\", got %s", t.describe())
		}
	}
	if !p.isWord("past") {
		return nil, nil
	}
	p.next()
	t := p.next()
	if t.kind != tDuration {
		return nil, t.pos.errorf("expected a duration such as 7d, 24h or 15min, got %s", t.describe())
	}
	d, err := parseDuration(t.text)
	if err != nil || d <= 0 {
		return nil, t.pos.errorf("invalid duration %q", t.text)
	}
	return &Timeframe{Pos: start.pos, Duration: d, Text: t.text}, nil
}

func parseDuration(s string) (time.Duration, error) {
	k := 0
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	n, err := strconv.ParseInt(s[:k], 10, 64)
	if err != nil {
		return 0, err
	}
	var unit time.Duration
	switch s[k:] {
	case "min":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, strconv.ErrSyntax
	}
	// Beyond about 290 years time.Duration overflows.
	if n > int64((1<<63-1)/unit) {
		return 0, strconv.ErrRange
	}
	return time.Duration(n) * unit, nil
}

func (p *parser) clause() (Clause, error) {
	t := p.next()
	if t.kind != tIdent {
		if t.kind == tEOF {
			return nil, t.pos.errorf("expected a clause after \"|\", got end of query")
		}
		return nil, t.pos.errorf("expected a clause (with, include, where, compute, summarize, list, sort, limit), got %s", t.describe())
	}
	switch t.text {
	case "with", "include":
		tt := p.next()
		if tt.kind != tIdent {
			return nil, tt.pos.errorf("expected a table name after %q, got %s", t.text, tt.describe())
		}
		tf, err := p.timeframe()
		if err != nil {
			return nil, err
		}
		return &JoinClause{Pos: t.pos, Include: t.text == "include", Table: tt.text, TablePos: tt.pos, Timeframe: tf}, nil
	case "where":
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &WhereClause{Pos: t.pos, Cond: e}, nil
	case "compute":
		items, err := p.assigns()
		if err != nil {
			return nil, err
		}
		return &ComputeClause{Pos: t.pos, Items: items}, nil
	case "summarize":
		items, err := p.assigns()
		if err != nil {
			return nil, err
		}
		c := &SummarizeClause{Pos: t.pos, Items: items}
		if p.isWord("by") {
			p.next()
			if c.By, err = p.fieldList(); err != nil {
				return nil, err
			}
		}
		return c, nil
	case "list":
		fs, err := p.fieldList()
		if err != nil {
			return nil, err
		}
		return &ListClause{Pos: t.pos, Fields: fs}, nil
	case "sort":
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		c := &SortClause{Pos: t.pos, Field: f}
		if p.isWord("asc") {
			p.next()
		} else if p.isWord("desc") {
			p.next()
			c.Desc = true
		}
		return c, nil
	case "limit":
		nt := p.next()
		if nt.kind != tInt {
			return nil, nt.pos.errorf("expected a row count after \"limit\", got %s", nt.describe())
		}
		n, err := strconv.Atoi(nt.text)
		if err != nil {
			return nil, nt.pos.errorf("invalid row count %q", nt.text)
		}
		return &LimitClause{Pos: t.pos, N: n}, nil
	}
	return nil, t.pos.errorf("unknown clause %q (expected with, include, where, compute, summarize, list, sort or limit)", t.text)
}

func (p *parser) assigns() ([]Assign, error) {
	var out []Assign
	for {
		t := p.next()
		if t.kind != tIdent {
			return nil, t.pos.errorf("expected a name to assign, got %s", t.describe())
		}
		if strings.Contains(t.text, ".") {
			return nil, t.pos.errorf("computed name %q must not contain \".\"", t.text)
		}
		if _, err := p.expectPunct("="); err != nil {
			return nil, err
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		out = append(out, Assign{Pos: t.pos, Name: t.text, Expr: e})
		if !p.isPunct(",") {
			return out, nil
		}
		p.next()
	}
}

func (p *parser) field() (*FieldRef, error) {
	t := p.next()
	if t.kind != tIdent {
		return nil, t.pos.errorf("expected a field name, got %s", t.describe())
	}
	return &FieldRef{Pos: t.pos, Name: t.text}, nil
}

func (p *parser) fieldList() ([]*FieldRef, error) {
	var out []*FieldRef
	for {
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		if !p.isPunct(",") {
			return out, nil
		}
		p.next()
	}
}

// Expression grammar, loosest first:
//
//	or:   and {"or" and}
//	and:  not {"and" not}
//	not:  ("!" | "not") not | cmp
//	cmp:  add [("==" | "!=" | "<" | "<=" | ">" | ">=" | "contains") add | ["!"] "in" list]
//	add:  mul {("+" | "-") mul}
//	mul:  unary {("*" | "/") unary}
//	unary: "-" unary | primary
//
// `!` binds looser than comparisons, so `!a == b` is `!(a == b)`, as in NQL filters.
func (p *parser) expr() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.peek().pos.errorf("expression nested too deeply")
	}
	return p.or()
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		t := p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: "or", L: l, R: r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		t := p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: "and", L: l, R: r}
	}
	return l, nil
}

func (p *parser) not() (Expr, error) {
	if p.isPunct("!") || p.isWord("not") {
		t := p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, t.pos.errorf("expression nested too deeply")
		}
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &Unary{Pos: t.pos, Op: "!", X: x}, nil
	}
	return p.cmp()
}

func (p *parser) cmp() (Expr, error) {
	l, err := p.add()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == tPunct && (t.text == "==" || t.text == "!=" || t.text == "<" ||
		t.text == "<=" || t.text == ">" || t.text == ">="):
		p.next()
		r, err := p.add()
		if err != nil {
			return nil, err
		}
		return &Binary{Pos: t.pos, Op: t.text, L: l, R: r}, nil
	case t.kind == tPunct && t.text == "=":
		return nil, t.pos.errorf("unexpected \"=\" (use \"==\" to compare)")
	case t.kind == tIdent && t.text == "contains":
		p.next()
		r, err := p.add()
		if err != nil {
			return nil, err
		}
		return &Binary{Pos: t.pos, Op: "contains", L: l, R: r}, nil
	case t.kind == tIdent && t.text == "in":
		p.next()
		return p.inList(t.pos, l, false)
	case t.kind == tPunct && t.text == "!" && p.toks[p.i+1].kind == tIdent && p.toks[p.i+1].text == "in":
		p.next()
		p.next()
		return p.inList(t.pos, l, true)
	}
	return l, nil
}

func (p *parser) inList(pos Pos, x Expr, not bool) (Expr, error) {
	if _, err := p.expectPunct("["); err != nil {
		return nil, err
	}
	in := &In{Pos: pos, Not: not, X: x}
	if p.isPunct("]") {
		p.next()
		return in, nil
	}
	for {
		t := p.peek()
		item, err := p.unary()
		if err != nil {
			return nil, err
		}
		switch item.(type) {
		case *Literal, *Param:
		default:
			return nil, t.pos.errorf("expected a literal or a parameter in the list")
		}
		in.Items = append(in.Items, item)
		if p.isPunct("]") {
			p.next()
			return in, nil
		}
		if _, err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
}

func (p *parser) add() (Expr, error) {
	l, err := p.mul()
	if err != nil {
		return nil, err
	}
	for p.isPunct("+") || p.isPunct("-") {
		t := p.next()
		r, err := p.mul()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: t.text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) mul() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isPunct("*") || p.isPunct("/") {
		t := p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: t.text, L: l, R: r}
	}
	return l, nil
}

func (p *parser) unary() (Expr, error) {
	if p.isPunct("-") {
		t := p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, t.pos.errorf("expression nested too deeply")
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		// Fold negative number literals so `in [-1]` and limits of lists work.
		if lit, ok := x.(*Literal); ok {
			switch v := lit.Value.(type) {
			case int64:
				return &Literal{Pos: t.pos, Value: -v}, nil
			case float64:
				return &Literal{Pos: t.pos, Value: -v}, nil
			}
		}
		return &Unary{Pos: t.pos, Op: "-", X: x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return &Literal{Pos: t.pos, Value: t.text}, nil
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, t.pos.errorf("integer %s out of range", t.text)
		}
		return &Literal{Pos: t.pos, Value: n}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, t.pos.errorf("invalid number %s", t.text)
		}
		return &Literal{Pos: t.pos, Value: f}, nil
	case tDuration:
		return nil, t.pos.errorf("duration %s is only allowed in a timeframe", t.text)
	case tParam:
		return &Param{Pos: t.pos, Name: t.text}, nil
	case tIdent:
		switch t.text {
		case "true":
			return &Literal{Pos: t.pos, Value: true}, nil
		case "false":
			return &Literal{Pos: t.pos, Value: false}, nil
		case "null":
			return &Literal{Pos: t.pos, Value: nil}, nil
		}
		if p.isPunct("(") {
			return p.call(t)
		}
		return &FieldRef{Pos: t.pos, Name: t.text}, nil
	case tPunct:
		if t.text == "(" {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if _, err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return e, nil
		}
	}
	return nil, unexpected(t)
}

// call parses `name(` ... `)` where name is `func` or `field.func`.
func (p *parser) call(name token) (Expr, error) {
	p.next() // (
	if !p.isPunct(")") {
		t := p.peek()
		return nil, t.pos.errorf("aggregate functions take no arguments, got %s", t.describe())
	}
	p.next()
	c := &Call{Pos: name.pos}
	if k := strings.LastIndexByte(name.text, '.'); k >= 0 {
		c.Field = &FieldRef{Pos: name.pos, Name: name.text[:k]}
		c.Func = name.text[k+1:]
		// Point at the function name, where an unknown-function error belongs.
		c.Pos = Pos{name.pos.Line, name.pos.Column + k + 1}
	} else {
		c.Func = name.text
	}
	return c, nil
}
