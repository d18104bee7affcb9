package nexthink

import (
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// timeLayouts are the date-time forms of the NQL API: rows ("2023-07-17 17:53:49"),
// executionDateTime of v2 ("2023-03-07T15:56:02"), and RFC 3339 for safety. Parsing
// accepts fractional seconds after the seconds field with these layouts too.
var timeLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	time.RFC3339Nano,
}

// ParseTime reads a date-time value of an NQL row or CSV record. Values without a
// zone are UTC, since the client asks for UTC times (x-utc-times: true). It accepts
// a time.Time as is; anything else is not a time.
func ParseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), true
	case string:
		s := strings.TrimSpace(x)
		if len(s) < len("2006-01-02T15:04:05") {
			return time.Time{}, false
		}
		if t, ok := parseWholeSeconds(s); ok {
			return t, true
		}
		for _, l := range timeLayouts {
			// A layout matches only values with its separator at byte 10 (the date
			// before it has a fixed width): the others would fail, each allocating
			// its error, for every time cell of an export.
			if l[10] != s[10] {
				continue
			}
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}

// parseWholeSeconds reads the forms nearly every value has, "2006-01-02 15:04:05",
// "2006-01-02T15:04:05" and "2006-01-02T15:04:05Z", as time.ParseInLocation reads
// them with timeLayouts (the same ranges: a day that its month lacks, hour 24 and
// second 60 are not times), 3 to 15 times faster; any other value is not (ok
// false) and goes to the layouts.
func parseWholeSeconds(s string) (t time.Time, ok bool) {
	switch {
	case len(s) == 19 && (s[10] == ' ' || s[10] == 'T'):
	case len(s) == 20 && s[10] == 'T' && s[19] == 'Z':
	default:
		return time.Time{}, false
	}
	if s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				ok = false
				return 0
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	ok = true
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, second := num(11, 13), num(14, 16), num(17, 19)
	if !ok || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // the month has fewer days: time.Date carried into the next
		return time.Time{}, false
	}
	return t, true
}

// FormatTime is the one form of every date-time dexbridge returns: RFC 3339 in UTC
// ("2023-07-17T17:53:49Z").
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// NormalizeTime returns a date-time value of an NQL row in FormatTime's form; a
// value that is not a date-time (null, a number, text that does not parse) is
// returned as it is.
func NormalizeTime(v any) any {
	if t, ok := ParseTime(v); ok {
		return FormatTime(t)
	}
	return v
}

// timeColumns tells the date-time columns of a result apart, by their fully
// qualified names in the NQL schema. Columns the schema does not declare (computed
// ones) are left as the instance sent them: the caller that compiled the query
// knows their types (Analysis.Types).
type timeColumns struct {
	schema *nql.Schema
}

func (tc timeColumns) isTime(column string) bool {
	typ, ok := tc.schema.FieldType(column)
	return ok && typ == nql.TypeDateTime
}

// rows rewrites the date-time values of rows (keyed by column) in place.
func (tc timeColumns) rows(rows []map[string]any) {
	isTime := map[string]bool{}
	for _, row := range rows {
		for col, v := range row {
			t, known := isTime[col]
			if !known {
				t = tc.isTime(col)
				isTime[col] = t
			}
			if t {
				row[col] = NormalizeTime(v)
			}
		}
	}
}

// records wraps fn so that the date-time cells of each CSV record reach it in
// FormatTime's form; empty cells stay empty.
func (tc timeColumns) records(fn func(header, record []string) error) func(header, record []string) error {
	var cols []int
	seen := false
	return func(header, record []string) error {
		if !seen {
			for k, col := range header {
				if tc.isTime(col) {
					cols = append(cols, k)
				}
			}
			seen = true
		}
		for _, k := range cols {
			if k < len(record) {
				if t, ok := ParseTime(record[k]); ok {
					record[k] = FormatTime(t)
				}
			}
		}
		return fn(header, record)
	}
}
