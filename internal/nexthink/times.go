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
		for _, l := range timeLayouts {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
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
