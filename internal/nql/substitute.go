package nql

import "strings"

// Substitute returns src with each $name outside string literals replaced by the
// value of params[name] as a quoted, escaped NQL string: the executedQuery text the
// NQL API reports. A parameter missing from params is a *ParamError.
func Substitute(src string, params map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(src))
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '"':
			// Copy the literal through its closing quote, skipping escapes.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			b.WriteString(src[i:j])
			i = j
		case c == '$' && i+1 < len(src) && isIdentStart(src[i+1]):
			j := i + 1
			for j < len(src) && isIDByte(src[j]) {
				j++
			}
			name := src[i+1 : j]
			v, ok := params[name]
			if !ok {
				return "", &ParamError{Name: name, Msg: "missing"}
			}
			b.WriteString(Quote(v))
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// Quote renders s as an NQL string literal that the lexer reads back as s.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
