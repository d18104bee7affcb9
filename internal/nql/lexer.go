package nql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pos is a position in the query text, 1-based; Column counts characters.
type Pos struct {
	Line, Column int
}

func (p Pos) errorf(format string, args ...any) *Error {
	return &Error{Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

func formatError(e *Error) string {
	return "line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column) + ": " + e.Msg
}

type tokKind int

const (
	tEOF      tokKind = iota
	tIdent            // dotted name: devices, device.name, package.name.count
	tString           // "..." (text holds the unescaped value)
	tInt              // 42
	tFloat            // 4.2
	tDuration         // 7d, 15min, 24h
	tParam            // $name (text holds the name)
	tPunct            // | , ( ) [ ] = == != < <= > >= ! + - * /
)

type token struct {
	kind tokKind
	text string
	pos  Pos
}

// describe renders a token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return strconv.Quote(t.text)
	case tParam:
		return strconv.Quote("$" + t.text)
	}
	return strconv.Quote(t.text)
}

// lex splits src into tokens. Keywords are identifiers; the parser tells them apart
// by position, so field names such as `time` or `status` need no quoting.
func lex(src string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	// advance moves i over n bytes that contain no newline.
	advance := func(n int) {
		col += utf8.RuneCountInString(src[i : i+n])
		i += n
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			i++
			line, col = line+1, 1
			continue
		case c == ' ' || c == '\t' || c == '\r':
			advance(1)
			continue
		}
		pos := Pos{line, col}
		switch {
		case isIdentStart(c) || c == '#' && i+1 < len(src) && isIdentStart(src[i+1]):
			// A segment may start with '#': a custom field (device.#department).
			j := i + 1
			for j < len(src) {
				if isIDByte(src[j]) {
					j++
				} else if src[j] == '.' && j+1 < len(src) && isIDByte(src[j+1]) {
					j += 2
				} else if src[j] == '.' && j+2 < len(src) && src[j+1] == '#' && isIdentStart(src[j+2]) {
					j += 3
				} else {
					break
				}
			}
			toks = append(toks, token{tIdent, src[i:j], pos})
			advance(j - i)
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			kind := tInt
			if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
				kind = tFloat
				j++
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			if j < len(src) && isIdentStart(src[j]) {
				k := j
				for k < len(src) && isIDByte(src[k]) {
					k++
				}
				unit := src[j:k]
				if kind != tInt || (unit != "min" && unit != "h" && unit != "d") {
					return nil, pos.errorf("invalid number or duration %q (duration units are min, h, d)", src[i:k])
				}
				kind, j = tDuration, k
			}
			toks = append(toks, token{kind, src[i:j], pos})
			advance(j - i)
		case c == '"':
			s, n, err := scanString(src[i:], pos)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, s, pos})
			// A string may span lines: keep line and column right after it.
			for _, r := range src[i : i+n] {
				if r == '\n' {
					line, col = line+1, 1
				} else {
					col++
				}
			}
			i += n
		case c == '$':
			j := i + 1
			if j >= len(src) || !isIdentStart(src[j]) {
				return nil, pos.errorf("expected parameter name after \"$\"")
			}
			for j < len(src) && isIDByte(src[j]) {
				j++
			}
			toks = append(toks, token{tParam, src[i+1 : j], pos})
			advance(j - i)
		default:
			n := 1
			switch c {
			case '=', '!', '<', '>':
				if i+1 < len(src) && src[i+1] == '=' {
					n = 2
				}
			case '|', ',', '(', ')', '[', ']', '+', '-', '*', '/':
			default:
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, pos.errorf("unexpected character %q", r)
			}
			toks = append(toks, token{tPunct, src[i : i+n], pos})
			advance(n)
		}
	}
	toks = append(toks, token{tEOF, "", Pos{line, col}})
	return toks, nil
}

// scanString reads a double-quoted literal at the start of s and returns its value
// and its length in bytes. Escapes: \" \\ \n \t \r; any other escaped character
// stands for itself.
func scanString(s string, pos Pos) (string, int, error) {
	var b strings.Builder
	plain := true // no escape seen: the value is a substring of s
	for j := 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			if plain {
				return s[1:j], j + 1, nil
			}
			return b.String(), j + 1, nil
		case '\\':
			if plain {
				b.WriteString(s[1:j])
				plain = false
			}
			j++
			if j >= len(s) {
				return "", 0, pos.errorf("unterminated string")
			}
			switch s[j] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[j])
			}
		default:
			if !plain {
				b.WriteByte(s[j])
			}
		}
	}
	return "", 0, pos.errorf("unterminated string")
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
