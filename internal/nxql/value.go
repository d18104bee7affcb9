package nxql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Row is one row as the data source presents it: it answers fully qualified
// source field names ("device.name", "session.events.end_time", "user.name" on an
// event linked to a user), nil when it has no such value.
type Row interface {
	Value(field string) any
}

// literal is a typed value written in a query: (string "x"), (integer 5), ...
type literal struct {
	typ   Type
	text  string
	str   string // string, enum, pattern (lower case for enum and pattern)
	num   float64
	i     int64
	isInt bool
	b     bool
	t     timeExpr
	pos   Pos
}

// timeExpr is a datetime in a query: absolute, or now / midnight (today 00:00
// UTC) minus or plus an offset ("now-7d", "midnight-1d").
type timeExpr struct {
	base   string // "now", "midnight" or "" for absolute
	abs    time.Time
	offset time.Duration
}

func (t timeExpr) at(now time.Time) time.Time {
	switch t.base {
	case "now":
		return now.Add(t.offset)
	case "midnight":
		y, m, d := now.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(t.offset)
	}
	return t.abs
}

// parseTime reads an NXQL datetime: YYYY-MM-DD@hh:mm:ss (the Engines' form),
// YYYY-MM-DDThh:mm:ss, "YYYY-MM-DD hh:mm:ss", YYYY-MM-DD, or now/midnight with an
// offset in d, h, m or s.
func parseTime(s string) (timeExpr, bool) {
	for _, base := range []string{"now", "midnight"} {
		rest, ok := strings.CutPrefix(s, base)
		if !ok {
			continue
		}
		if rest == "" {
			return timeExpr{base: base}, true
		}
		if len(rest) < 3 { // a sign, a number and a unit
			return timeExpr{}, false
		}
		sign := time.Duration(1)
		switch rest[0] {
		case '-':
			sign = -1
		case '+':
		default:
			return timeExpr{}, false
		}
		num, unit := rest[1:len(rest)-1], rest[len(rest)-1]
		n, err := strconv.ParseInt(num, 10, 32)
		if err != nil || n < 0 || num == "" || num[0] == '+' {
			return timeExpr{}, false
		}
		var u time.Duration
		switch unit {
		case 'd':
			u = 24 * time.Hour
		case 'h':
			u = time.Hour
		case 'm':
			u = time.Minute
		case 's':
			u = time.Second
		default:
			return timeExpr{}, false
		}
		if n > int64(math.MaxInt64/u) {
			return timeExpr{}, false
		}
		return timeExpr{base: base, offset: sign * time.Duration(n) * u}, true
	}
	for _, layout := range []string{"2006-01-02@15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return timeExpr{abs: t}, true
		}
	}
	return timeExpr{}, false
}

// parseLiteral checks text against the written type.
func parseLiteral(typ Type, text string, pos Pos) (literal, error) {
	l := literal{typ: typ, text: text, pos: pos}
	bad := func() (literal, error) {
		return literal{}, errorAt(pos, "%q is not a valid %s value", text, typ)
	}
	switch typ {
	case TypeString:
		l.str = text
	case TypeEnum:
		if text == "" {
			return bad()
		}
		l.str = strings.ToLower(text)
	case TypePattern:
		l.str = strings.ToLower(text)
	case TypeInteger:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return bad()
		}
		l.i, l.num, l.isInt = n, float64(n), true
	case TypeReal:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		l.num = f
	case TypeBoolean:
		switch strings.ToLower(text) {
		case "true":
			l.b = true
		case "false":
		default:
			return bad()
		}
	case TypeDateTime:
		t, ok := parseTime(text)
		if !ok {
			return bad()
		}
		l.t = t
	}
	return l, nil
}

// accepts reports whether a field of type ft may be compared with a literal of
// type lt.
func accepts(ft, lt Type) bool {
	switch ft {
	case TypeString:
		return lt == TypeString || lt == TypePattern
	case TypeEnum:
		return lt == TypeEnum || lt == TypePattern
	case TypeInteger, TypeReal:
		return lt == TypeInteger || lt == TypeReal
	case TypeAny:
		return lt == TypeString || lt == TypePattern || lt == TypeInteger || lt == TypeReal || lt == TypeEnum
	}
	return ft == lt
}

// normValue maps a source value to the types the evaluator compares: string,
// int64, float64, bool, time.Time (UTC) or nil.
func normValue(v any) any {
	switch x := v.(type) {
	case nil, string, int64, float64, bool:
		return v
	case time.Time:
		return x.UTC()
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func asTime(v any) (time.Time, bool) {
	t, ok := v.(time.Time)
	return t, ok
}

func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// match reports whether s matches a glob pattern (already lower case): '*' is any
// run of characters, '?' one character; case-insensitive.
func match(pattern, s string) bool {
	s = strings.ToLower(s)
	p, str := []rune(pattern), []rune(s)
	// Iterative glob with one backtrack point: linear in practice, no recursion.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// compareLiteral compares a row value with a literal: -1, 0, 1, and false when
// they cannot be compared (nil, or different kinds).
func compareLiteral(v any, l *literal, now time.Time) (int, bool) {
	switch l.typ {
	case TypeString, TypeEnum:
		s, ok := v.(string)
		if !ok {
			if n, isNum := asNumber(v); isNum && l.typ == TypeString {
				s, ok = strconv.FormatFloat(n, 'f', -1, 64), true
			}
		}
		if !ok {
			return 0, false
		}
		return strings.Compare(strings.ToLower(s), strings.ToLower(l.str)), true
	case TypeInteger, TypeReal:
		n, ok := asNumber(v)
		if !ok {
			return 0, false
		}
		return cmpFloat(n, l.num), true
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return 0, false
		}
		if b == l.b {
			return 0, true
		}
		if !b {
			return -1, true
		}
		return 1, true
	case TypeDateTime:
		t, ok := asTime(v)
		if !ok {
			return 0, false
		}
		return t.Compare(l.t.at(now)), true
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareValues orders two result values (nil last), for order_by.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if x, ok := a.(string); ok { // what the end below does, without parsing a number per comparison
		return strings.Compare(strings.ToLower(x), strings.ToLower(fmt.Sprint(b)))
	}
	if x, ok := asTime(a); ok {
		if y, ok := asTime(b); ok {
			return x.Compare(y)
		}
	}
	if x, ok := asNumber(a); ok {
		if _, isStr := a.(string); !isStr {
			if y, ok := asNumber(b); ok {
				return cmpFloat(x, y)
			}
		}
	}
	if x, ok := a.(bool); ok {
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	}
	return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
}

// TimeLayout is how result datetimes are written: UTC, second precision.
const TimeLayout = "2006-01-02T15:04:05"

// FormatValue renders a result value as the JSON or CSV output carries it:
// datetimes as TimeLayout strings, numbers and booleans as themselves.
func FormatValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(TimeLayout)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return v
}
