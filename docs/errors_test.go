package docs

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// TestErrorsPageDocumentsEveryCode keeps errors.md and the code table of
// internal/problem in step: a section per code that states the code's HTTP status,
// and no level-2 section for a code that does not exist.
func TestErrorsPageDocumentsEveryCode(t *testing.T) {
	page := readPage(t, "errors.md")
	known := map[string]bool{}
	for _, c := range problem.Codes() {
		known[string(c)] = true
		section, ok := page.sections[string(c)]
		if !ok {
			t.Errorf("errors.md has no section \"## %s\"", c)
			continue
		}
		if status := "HTTP " + strconv.Itoa(c.Status()); !strings.Contains(section, status) {
			t.Errorf("errors.md, section %s: got no %q, want the code's status stated", c, status)
		}
	}
	codeLike := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for anchor, level := range page.levels {
		if level == 2 && codeLike.MatchString(anchor) && !known[anchor] {
			t.Errorf("errors.md documents %q, which is not a code of internal/problem", anchor)
		}
	}
}

// TestTypeURIsPointAtTheErrorsPage checks every type URI a problem document can
// carry, including that of a code outside the table, against errors.md's anchors.
func TestTypeURIsPointAtTheErrorsPage(t *testing.T) {
	page := readPage(t, "errors.md")
	codes := append(problem.Codes(), problem.Code("no_such_code"), "")
	for _, c := range codes {
		docs := []problem.Document{
			(&problem.Error{Code: c}).Doc(),
			problem.FromDoc(problem.Document{Code: c}).Doc(),
		}
		for _, d := range docs {
			base, anchor, ok := strings.Cut(d.Type, "#")
			if !ok || base != "https://github.com/dexbridge/dexbridge/blob/main/docs/errors.md" {
				t.Errorf("code %q: got type %q, want a URI into docs/errors.md", c, d.Type)
				continue
			}
			if _, ok := page.sections[anchor]; !ok {
				t.Errorf("code %q: type %q points at an anchor errors.md does not have", c, d.Type)
			}
			if anchor != string(d.Code) {
				t.Errorf("code %q: got type %q for code %q, want the code's own anchor", c, d.Type, d.Code)
			}
		}
	}
}
