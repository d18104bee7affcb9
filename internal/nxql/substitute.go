package nxql

import (
	"strconv"
	"strings"
)

// Substitute replaces the placeholders %1, %2, ... of a query with the request's
// p1, p2, ... parameters (params[0] is p1), as the Engines' Web API does before
// parsing. The text is substituted as it is: a value with a quote breaks out of
// its string, as it would on an Engine, so callers must not pass untrusted
// values. %N without a parameter stays as it is.
func Substitute(query string, params []string) string {
	if len(params) == 0 || !strings.Contains(query, "%") {
		return query
	}
	var b strings.Builder
	for k := 0; k < len(query); k++ {
		c := query[k]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		j := k + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(query[k+1 : j])
		if err != nil || n < 1 || n > len(params) {
			b.WriteByte(c)
			continue
		}
		b.WriteString(params[n-1])
		k = j - 1
	}
	return b.String()
}
