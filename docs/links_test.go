// Package docs holds the manual; its tests keep the manual's links working and
// errors.md in step with internal/problem.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// link is a Markdown inline link: [text](target).
	link = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// notAnchor is what GitHub drops from a heading to make its anchor.
	notAnchor = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// page is a Markdown file of the repository: the anchor of each heading, as GitHub
// derives it, with the text of its section up to the next heading and the heading's
// level, and the page's links.
type page struct {
	sections map[string]string
	levels   map[string]int
	links    []string
}

func readPage(t *testing.T, path string) page {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := page{sections: map[string]string{}, levels: map[string]int{}}
	anchor := ""
	inFence := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if h := strings.TrimLeft(line, "#"); !inFence && h != line && strings.HasPrefix(h, " ") {
			anchor = strings.ReplaceAll(notAnchor.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
			p.sections[anchor] = ""
			p.levels[anchor] = len(line) - len(h)
			continue
		}
		p.sections[anchor] += line + "\n"
		if !inFence {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				p.links = append(p.links, m[1])
			}
		}
	}
	return p
}

// TestLinks checks every relative link of README.md and docs/*.md: its file is in
// the repository and its anchor, if any, is a heading of that file.
func TestLinks(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	if len(files) < 10 {
		t.Fatalf("got %d pages, want README.md and the manual", len(files))
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]page{}
	load := func(path string) page {
		if p, ok := pages[path]; ok {
			return p
		}
		p := readPage(t, path)
		pages[path] = p
		return p
	}
	for _, file := range files {
		for _, target := range load(file).links {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
			}
			abs, err := filepath.Abs(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				t.Errorf("%s: link %q leaves the repository", file, target)
				continue
			}
			info, err := os.Stat(dest)
			if err != nil {
				t.Errorf("%s: link %q: %v", file, target, err)
				continue
			}
			if anchor == "" {
				continue
			}
			if info.IsDir() || !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q has an anchor into a file that is not Markdown", file, target)
				continue
			}
			if _, ok := load(dest).sections[anchor]; !ok {
				t.Errorf("%s: link %q: %s has no heading for #%s", file, target, dest, anchor)
			}
		}
	}
}
