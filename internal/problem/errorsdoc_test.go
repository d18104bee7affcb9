package problem_test

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// errorsPage is the page the problem type URIs point into.
const errorsPage = "../../docs/errors.md"

// anchors returns the anchor of every level-2 heading of a Markdown page, as GitHub
// derives them (lower case, punctuation other than '-' and '_' dropped, spaces to
// '-'), with the heading's section text.
func anchors(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	out := map[string]string{}
	var current string
	inFence := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(line, "## ") {
			current = strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(line[3:])), ""), " ", "-")
			out[current] = ""
			continue
		}
		if current != "" {
			out[current] += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestErrorsPageDocumentsEveryCode keeps docs/errors.md and the code table in step:
// an anchor per code that states the code's HTTP status, and no anchor for a code
// that does not exist.
func TestErrorsPageDocumentsEveryCode(t *testing.T) {
	page := anchors(t, errorsPage)
	known := map[string]bool{}
	for _, c := range problem.Codes() {
		known[string(c)] = true
		section, ok := page[string(c)]
		if !ok {
			t.Errorf("docs/errors.md has no section \"## %s\"", c)
			continue
		}
		if status := "HTTP " + strconv.Itoa(c.Status()); !strings.Contains(section, status) {
			t.Errorf("docs/errors.md, section %s: got no %q, want the code's status stated", c, status)
		}
	}
	codeLike := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for anchor := range page {
		if codeLike.MatchString(anchor) && !known[anchor] {
			t.Errorf("docs/errors.md documents %q, which is not a code of internal/problem", anchor)
		}
	}
}

// TestTypeURIsPointAtTheErrorsPage checks every type URI a document can carry,
// including the one of a code outside the table, against the page's anchors.
func TestTypeURIsPointAtTheErrorsPage(t *testing.T) {
	page := anchors(t, errorsPage)
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
			if _, ok := page[anchor]; !ok {
				t.Errorf("code %q: type %q points at an anchor docs/errors.md does not have", c, d.Type)
			}
			if anchor != string(d.Code) {
				t.Errorf("code %q: got type %q for code %q, want the code's own anchor", c, d.Type, d.Code)
			}
		}
	}
}
