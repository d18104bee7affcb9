package nxql

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pos is a position in the query text: Offset in bytes from 0, Line and Column
// (in runes) from 1.
type Pos struct {
	Offset, Line, Column int
}

func (p Pos) String() string { return fmt.Sprintf("line %d, column %d", p.Line, p.Column) }

type tokKind int

const (
	tokEOF tokKind = iota
	tokLParen
	tokRParen
	tokSymbol     // bare word: select, device, now-7d, *antivirus*, 16.0
	tokString     // "quoted text"
	tokHashString // #"quoted custom field", kept without the quotes and with its '#'
)

type token struct {
	kind tokKind
	text string
	pos  Pos
}

// lexer splits a query into parentheses, bare symbols and quoted strings. NXQL
// has no other lexical forms: every keyword, type and operator is a symbol.
type lexer struct {
	src  string
	off  int
	line int
	col  int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) pos() Pos { return Pos{Offset: l.off, Line: l.line, Column: l.col} }

// advance moves past one rune.
func (l *lexer) advance() rune {
	r, size := utf8.DecodeRuneInString(l.src[l.off:])
	l.off += size
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) peek() (rune, bool) {
	if l.off >= len(l.src) {
		return 0, false
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.off:])
	return r, true
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v'
}

// next returns the next token or a positioned error.
func (l *lexer) next() (token, error) {
	for {
		r, ok := l.peek()
		if !ok {
			return token{kind: tokEOF, pos: l.pos()}, nil
		}
		if !isSpace(r) {
			break
		}
		l.advance()
	}
	start := l.pos()
	r, _ := l.peek()
	switch {
	case r == '(':
		l.advance()
		return token{kind: tokLParen, text: "(", pos: start}, nil
	case r == ')':
		l.advance()
		return token{kind: tokRParen, text: ")", pos: start}, nil
	case r == '"':
		s, err := l.quoted()
		return token{kind: tokString, text: s, pos: start}, err
	case r == utf8.RuneError && l.src[l.off] >= 0x80:
		return token{}, errorAt(start, "invalid UTF-8 in the query")
	}
	if r == '#' && l.off+1 < len(l.src) && l.src[l.off+1] == '"' {
		l.advance()
		s, err := l.quoted()
		return token{kind: tokHashString, text: "#" + s, pos: start}, err
	}
	var b strings.Builder
	for {
		r, ok := l.peek()
		if !ok || isSpace(r) || r == '(' || r == ')' || r == '"' {
			break
		}
		if r == utf8.RuneError && l.src[l.off] >= 0x80 {
			return token{}, errorAt(l.pos(), "invalid UTF-8 in the query")
		}
		b.WriteRune(l.advance())
	}
	return token{kind: tokSymbol, text: b.String(), pos: start}, nil
}

// quoted reads a "..." string; \" and \\ are the only escapes.
func (l *lexer) quoted() (string, error) {
	start := l.pos()
	l.advance() // opening quote
	var b strings.Builder
	for {
		r, ok := l.peek()
		if !ok {
			return "", errorAt(start, "unterminated string")
		}
		if r == utf8.RuneError && l.src[l.off] >= 0x80 {
			return "", errorAt(l.pos(), "invalid UTF-8 in the query")
		}
		l.advance()
		switch r {
		case '"':
			return b.String(), nil
		case '\\':
			e, ok := l.peek()
			if ok && (e == '"' || e == '\\') {
				l.advance()
				b.WriteRune(e)
				continue
			}
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
}
