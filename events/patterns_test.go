package events

import (
	"regexp"
	"strings"
	"testing"
)

// boundedPatterns are the patterns checked with a rune bound, each beside the counted
// repetition it replaces (too costly to keep in every process, not to compile here).
var boundedPatterns = []struct {
	name    string
	p       boundedPattern
	counted string
}{
	{"device name", deviceNamePattern, `^[\p{L}\p{N}][\p{L}\p{M}\p{N} ._'’-]{0,254}$`},
	{"username", identifierFormats[KeyUsername].re.(boundedPattern), `^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._@\\'$+-]{0,255}$`},
	{"windows domain", windowsDomainPattern, `^[\p{L}\p{N}][\p{L}\p{N}._-]{0,254}$`},
	{"bare user", bareUserPattern, `^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._'$+-]{0,255}$`},
}

// FuzzBoundedPatterns: each bounded pattern accepts exactly what its counted
// repetition accepts.
func FuzzBoundedPatterns(f *testing.F) {
	for _, n := range []int{0, 1, 254, 255, 256, 257} {
		f.Add(strings.Repeat("a", n))
		f.Add("É" + strings.Repeat("é", n))
		f.Add("1" + strings.Repeat("\u0301", n)) // a combining mark: \p{M}
	}
	for _, s := range []string{"PC-1", `CORP\jdoe`, "jdoe@example.com", "Jane O'Neil", "\xff", "a\xffb", "a\n", " a", "日本語"} {
		f.Add(s)
	}
	counted := make([]*regexp.Regexp, len(boundedPatterns))
	for i, b := range boundedPatterns {
		counted[i] = regexp.MustCompile(b.counted)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, b := range boundedPatterns {
			if got, want := b.p.MatchString(s), counted[i].MatchString(s); got != want {
				t.Errorf("%s: %q (%d bytes): got %v, want %v", b.name, s, len(s), got, want)
			}
		}
	})
}
