package nexthink

import (
	"strings"
	"time"
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
