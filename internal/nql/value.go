package nql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// norm maps what a Source returns onto the Value types. The common types pass
// through without allocation; others are rare and may allocate.
func norm(v any) Value {
	switch x := v.(type) {
	case nil, string, int64, float64, bool, time.Time:
		return v
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint:
		return uintValue(uint64(x))
	case uint64:
		return uintValue(x)
	case uint32:
		return int64(x)
	case uint16:
		return int64(x)
	case uint8:
		return int64(x)
	case float32:
		return float64(x)
	case *time.Time:
		if x == nil {
			return nil
		}
		return *x
	case fmt.Stringer:
		return x.String()
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func uintValue(x uint64) Value {
	if x > math.MaxInt64 {
		return float64(x)
	}
	return int64(x)
}

// toNumber returns v as a number. Numeric strings count as numbers: untyped
// remote-action outputs often arrive as text.
func toNumber(v Value) (i int64, f float64, isInt, ok bool) {
	switch x := v.(type) {
	case int64:
		return x, 0, true, true
	case float64:
		return 0, x, false, true
	case string:
		return parseNumber(x)
	}
	return 0, 0, false, false
}

func parseNumber(s string) (int64, float64, bool, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, 0, true, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, f, false, true
	}
	return 0, 0, false, false
}

// parseTime reads the date-time spellings accepted in literals and parameters: the
// NQL API's "2023-07-17 17:53:49", ISO 8601 and plain dates, all UTC unless zoned.
func parseTime(s string) (time.Time, bool) {
	layouts := [...]string{
		time.RFC3339Nano,
		"2006-01-02 15:04:05",
		"2006-01-02T15:04:05",
		"2006-01-02 15:04",
		"2006-01-02",
	}
	s = strings.TrimSpace(s)
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// asTime reads a time field; a Source that hands out date-time text still works.
func asTime(v Value) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		return parseTime(x)
	}
	return time.Time{}, false
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// convertString converts a literal or parameter string to the type of the field it
// is compared with.
func convertString(s string, t FieldType) (Value, bool) {
	switch t {
	case TypeInt, TypeFloat:
		i, f, isInt, ok := parseNumber(s)
		if !ok {
			return nil, false
		}
		if isInt {
			if t == TypeFloat {
				return float64(i), true
			}
			return i, true
		}
		return f, true
	case TypeBool:
		b, ok := parseBool(s)
		return b, ok
	case TypeDateTime:
		tm, ok := parseTime(s)
		if !ok {
			return nil, false
		}
		return tm, true
	}
	return s, true
}

// compare orders a and b. ok is false when they are not comparable (a null, or
// types that do not meet); strings compare case-insensitively, as NQL does.
func compare(a, b Value) (c int, ok bool) {
	if a == nil || b == nil {
		return 0, false
	}
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return compareFold(x, y), true
		case int64, float64:
			return compareNumbers(x, y)
		case time.Time:
			if t, ok := parseTime(x); ok {
				return t.Compare(y), true
			}
		case bool:
			if bx, ok := parseBool(x); ok {
				return compareBools(bx, y), true
			}
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmpOrdered(x, y), true
		}
		return compareNumbers(a, b)
	case float64:
		return compareNumbers(a, b)
	case time.Time:
		switch y := b.(type) {
		case time.Time:
			return x.Compare(y), true
		case string:
			if t, ok := parseTime(y); ok {
				return x.Compare(t), true
			}
		}
	case bool:
		switch y := b.(type) {
		case bool:
			return compareBools(x, y), true
		case string:
			if by, ok := parseBool(y); ok {
				return compareBools(x, by), true
			}
		}
	}
	return 0, false
}

func compareNumbers(a, b Value) (int, bool) {
	ai, af, aInt, ok := toNumber(a)
	if !ok {
		return 0, false
	}
	bi, bf, bInt, ok := toNumber(b)
	if !ok {
		return 0, false
	}
	if aInt && bInt {
		return cmpOrdered(ai, bi), true
	}
	if aInt {
		af = float64(ai)
	}
	if bInt {
		bf = float64(bi)
	}
	if math.IsNaN(af) || math.IsNaN(bf) {
		return 0, false
	}
	return cmpOrdered(af, bf), true
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareBools(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// equal is NQL equality: null equals only null; strings compare case-insensitively.
func equal(a, b Value) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.EqualFold(x, y)
		}
	}
	c, ok := compare(a, b)
	return ok && c == 0
}

// compareFold compares two strings case-insensitively without allocating.
func compareFold(a, b string) int {
	for a != "" && b != "" {
		var ra, rb rune
		if a[0] < utf8.RuneSelf {
			ra, a = rune(a[0]), a[1:]
		} else {
			r, n := utf8.DecodeRuneInString(a)
			ra, a = r, a[n:]
		}
		if b[0] < utf8.RuneSelf {
			rb, b = rune(b[0]), b[1:]
		} else {
			r, n := utf8.DecodeRuneInString(b)
			rb, b = r, b[n:]
		}
		if ra == rb {
			continue
		}
		la, lb := unicode.ToLower(ra), unicode.ToLower(rb)
		if la != lb {
			return cmpOrdered(int64(la), int64(lb))
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// hasPrefixFold reports whether s starts with prefix, ignoring case, and returns the
// length in bytes of the matched part of s.
func hasPrefixFold(s, prefix string) (int, bool) {
	n := 0
	for prefix != "" {
		if s == "" {
			return 0, false
		}
		var rs, rp rune
		var ls, lp int
		if s[0] < utf8.RuneSelf {
			rs, ls = rune(s[0]), 1
		} else {
			rs, ls = utf8.DecodeRuneInString(s)
		}
		if prefix[0] < utf8.RuneSelf {
			rp, lp = rune(prefix[0]), 1
		} else {
			rp, lp = utf8.DecodeRuneInString(prefix)
		}
		if rs != rp && !foldEq(rs, rp) {
			return 0, false
		}
		s, prefix, n = s[ls:], prefix[lp:], n+ls
	}
	return n, true
}

func foldEq(a, b rune) bool {
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	// Walk b's fold orbit, as strings.EqualFold does.
	for r := unicode.SimpleFold(b); r != b; r = unicode.SimpleFold(r) {
		if r == a {
			return true
		}
	}
	return a == b
}

// indexFold returns the byte index in s of the first case-insensitive match of sub
// and the matched length, or -1.
func indexFold(s, sub string) (int, int) {
	if sub == "" {
		return 0, 0
	}
	for i := 0; i < len(s); {
		if n, ok := hasPrefixFold(s[i:], sub); ok {
			return i, n
		}
		if s[i] < utf8.RuneSelf {
			i++
		} else {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
	}
	return -1, 0
}

// pattern is a precompiled `*` wildcard pattern, matched case-insensitively.
type pattern struct {
	parts []string // the text between stars
	lead  bool     // pattern starts with *
	trail bool     // pattern ends with *
}

func hasWildcard(s string) bool { return strings.IndexByte(s, '*') >= 0 }

func compilePattern(s string) pattern {
	parts := strings.Split(s, "*")
	p := pattern{lead: strings.HasPrefix(s, "*"), trail: strings.HasSuffix(s, "*")}
	for _, part := range parts {
		if part != "" {
			p.parts = append(p.parts, part)
		}
	}
	return p
}

func (p *pattern) match(s string) bool {
	parts := p.parts
	if len(parts) == 0 {
		return p.lead || s == "" // "*" matches anything
	}
	if !p.lead {
		n, ok := hasPrefixFold(s, parts[0])
		if !ok {
			return false
		}
		s, parts = s[n:], parts[1:]
		if len(parts) == 0 {
			return p.trail || s == ""
		}
	}
	// The last part must sit at the very end unless the pattern ends with *; match it
	// there first so the greedy scan of the middle parts cannot steal its text.
	last := len(parts)
	if !p.trail {
		tail := parts[len(parts)-1]
		k, ok := suffixFoldStart(s, tail)
		if !ok {
			return false
		}
		s, last = s[:k], len(parts)-1
	}
	for _, part := range parts[:last] {
		i, n := indexFold(s, part)
		if i < 0 {
			return false
		}
		s = s[i+n:]
	}
	return true
}

// suffixFoldStart finds where a case-insensitive suffix match of suf begins in s.
func suffixFoldStart(s, suf string) (int, bool) {
	for i := len(s); i >= 0; i-- {
		if i < len(s) && !utf8.RuneStart(s[i]) {
			continue
		}
		if n, ok := hasPrefixFold(s[i:], suf); ok && i+n == len(s) {
			return i, true
		}
		if len(s)-i > 4*len(suf)+4 {
			break // folded forms are at most a few bytes longer per rune
		}
	}
	return 0, false
}

// toText renders a value as text for `contains` and wildcard matches on untyped
// fields; strings pass through without allocation.
func toText(v Value) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05"), true
	}
	return "", false
}
