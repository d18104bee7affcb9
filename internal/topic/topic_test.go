package topic

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `id: sample
title: Sample
description: A sample topic.
platforms: [Windows]
queries:
  - id: "#sample_query"
    parameters: {device_name: device.name}
    nql: devices | where device.name == $device_name | list device.name
rules:
  - id: r1
    title: Something is wrong
    when: device.name == "x"
    remediations: [fix]
remediations:
  - id: fix
    title: Fix it
    remote_action: "#fix_it"
generic_remediations: [fix]
`

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadShippedTopics(t *testing.T) {
	cat, err := LoadDir("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"outlook", "onedrive", "slow_pc"} {
		if _, ok := cat.Get(id); !ok {
			t.Errorf("topic %s not loaded", id)
		}
	}
}

func TestBadTopicsAreRefusedWithFileAndPath(t *testing.T) {
	tests := []struct {
		name, file, body string
		want             []string
	}{
		{"unknown key", "sample.yaml", strings.Replace(good, "title: Sample", "title: Sample\ncolour: blue", 1), []string{"sample.yaml", "colour"}},
		{"wrong type", "sample.yaml", strings.Replace(good, "platforms: [Windows]", "platforms: Windows", 1), []string{"sample.yaml", "platforms"}},
		{"unknown platform", "sample.yaml", strings.Replace(good, "platforms: [Windows]", "platforms: [Linux]", 1), []string{"platforms[0]"}},
		{"bad query id", "sample.yaml", strings.Replace(good, `"#sample_query"`, `"sample query"`, 1), []string{"queries[0].id"}},
		{"unknown parameter source", "sample.yaml", strings.Replace(good, "device_name: device.name", "device_name: user.name", 1), []string{"queries[0].parameters.device_name"}},
		{"remediation both kinds", "sample.yaml", strings.Replace(good, `remote_action: "#fix_it"`, `remote_action: "#fix_it"`+"\n    message: restart", 1), []string{"remediations[0]"}},
		{"dangling rule remediation", "sample.yaml", strings.Replace(good, "remediations: [fix]", "remediations: [nope]", 1), []string{"rules[0].remediations[0]", `"nope"`}},
		{"dangling generic remediation", "sample.yaml", strings.Replace(good, "generic_remediations: [fix]", "generic_remediations: [gone]", 1), []string{"generic_remediations[0]"}},
		{"id differs from file", "other.yaml", good, []string{"other.yaml", "file name"}},
		{"max_age not a duration", "sample.yaml", strings.Replace(good, "title: Sample", "title: Sample\nmax_age: a day", 1), []string{"sample.yaml", "max_age"}},
		{"max_age zero", "sample.yaml", strings.Replace(good, "title: Sample", "title: Sample\nmax_age: 0h", 1), []string{"sample.yaml", "max_age", "positive"}},
		{"not yaml", "sample.yaml", "id: [", []string{"sample.yaml"}},
		{"phrases not a list", "sample.yaml", withPhrases(`"I cannot print"`), []string{"phrases"}},
		{"phrase without a word", "sample.yaml", withPhrases(`["I cannot print", "?!"]`), []string{"phrases[1]", "word"}},
		{"phrase given twice", "sample.yaml", withPhrases(`["I can't print", "i can't PRINT!"]`), []string{"phrases[1]", "phrases[0]"}},
		{"phrase too long", "sample.yaml", withPhrases(`["` + strings.Repeat("x", 201) + `"]`), []string{"phrases[0]"}},
		{"phrase not text", "sample.yaml", withPhrases(`[{"a": 1}]`), []string{"phrases[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.body)
			_, err := LoadDir(dir)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// withPhrases is the sample topic with phrases (YAML text).
func withPhrases(phrases string) string {
	return strings.Replace(good, "platforms: [Windows]", "platforms: [Windows]\nphrases: "+phrases, 1)
}

func TestPhrases(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "sample.yaml", withPhrases(`["I cannot print anything", "The printer doesn't work"]`))
	cat, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.Get("sample"); len(got.Phrases) != 2 || got.Phrases[1] != "The printer doesn't work" {
		t.Errorf("got phrases %q", got.Phrases)
	}
	// Two topics may not share a phrase: it could not tell them apart.
	write(t, dir, "twin.yaml", strings.Replace(strings.Replace(withPhrases(`["the PRINTER doesn't work."]`), "id: sample", "id: twin", 1),
		"#sample_query", "#twin_query", 1))
	_, err = LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "twin.yaml: phrases[0]") || !strings.Contains(err.Error(), "topic sample") {
		t.Errorf("got %v, want the shared phrase named in twin.yaml", err)
	}
	for in, want := range map[string]string{
		"The printer doesn't work!": "the printer doesn t work", "  Outlook   keeps\tcrashing ": "outlook keeps crashing",
		"Mein Drucker geht nicht.": "mein drucker geht nicht", "?!": "",
	} {
		if got := NormalizePhrase(in); got != want {
			t.Errorf("NormalizePhrase(%q): got %q, want %q", in, got, want)
		}
	}
}

// Every shipped topic says how employees speak of it.
func TestShippedTopicsHavePhrases(t *testing.T) {
	cat, err := LoadDir("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range cat.List() {
		if len(tp.Phrases) < 5 {
			t.Errorf("topic %s: %d phrases, want at least 5", tp.ID, len(tp.Phrases))
		}
	}
}

func TestMaxAge(t *testing.T) {
	for _, tt := range []struct {
		line string
		want time.Duration
	}{
		{"", DefaultMaxAge},
		{"max_age: 90m\n", 90 * time.Minute},
		{"max_age: 7d\n", 7 * 24 * time.Hour},
	} {
		tp, err := Parse([]byte(strings.Replace(good, "title: Sample\n", "title: Sample\n"+tt.line, 1)))
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := tp.DataMaxAge(); got != tt.want {
			t.Errorf("%q: got max age %s, want %s", tt.line, got, tt.want)
		}
	}
}

func TestDuplicateQueryAcrossTopics(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "sample.yaml", good)
	write(t, dir, "twin.yaml", strings.Replace(good, "id: sample", "id: twin", 1))
	_, err := LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "#sample_query") {
		t.Errorf("got %v, want the duplicate query named", err)
	}
}

func TestEveryLineNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	body := strings.Replace(strings.Replace(good, "title: Sample", "title: Sample\ncolour: blue", 1), "platforms: [Windows]", "platforms: [Linux]", 1)
	write(t, dir, "sample.yaml", body)
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("got no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) < 2 {
		t.Fatalf("got %q, want one line per problem", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, filepath.Join(dir, "sample.yaml")+": ") {
			t.Errorf("line %q does not name the file", l)
		}
	}
}

func TestLoadQueries(t *testing.T) {
	qs, err := LoadQueries("../../config/queries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, q := range qs {
		ids[q.ID] = true
	}
	if !ids["#get_device_basic_infos"] || !ids["#get_remote_action_result"] {
		t.Errorf("got %v, want the seed's two generic queries among them", ids)
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "queries:\n  - id: \"#a_b\"\n    nql: devices\n    colour: blue\n", []string{"colour"}},
		{"bad id", "queries:\n  - id: \"a b\"\n    nql: devices\n", []string{"queries[0].id"}},
		{"duplicate id", "queries:\n  - id: \"#a_b\"\n    nql: devices\n  - id: \"#a_b\"\n    nql: users\n", []string{"queries[1].id", "duplicate"}},
		{"no nql", "queries:\n  - id: \"#a_b\"\n", []string{"queries[0].nql", "required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "queries.yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadQueries(path)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestNQLPosition: every character of a query's NQL text is found where NQLAt puts
// it in the file, for the plain, quoted and literal styles.
func TestNQLPosition(t *testing.T) {
	body := "queries:\n" +
		"  - id: \"#plain\"\n    nql: devices | list name\n" +
		"  - id: \"#quoted\"\n    nql: \"devices | list name\"\n" +
		"  - {id: \"#flow\", nql: 'users | list name'}\n" +
		"  - id: \"#literal\"\n    nql: |\n      devices\n      | where name == $device_name\n      | list name\n"
	path := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	qs, err := LoadQueries(path)
	if err != nil {
		t.Fatal(err)
	}
	file := strings.Split(body, "\n")
	for _, q := range qs {
		for i, line := range strings.Split(strings.TrimSuffix(q.NQL, "\n"), "\n") {
			for j := range line {
				l, c := q.NQLAt.In(i+1, j+1)
				if l < 1 || l > len(file) || c < 1 || c > len(file[l-1]) || file[l-1][c-1] != line[j] {
					t.Fatalf("%s: text %d:%d (%q) placed at %d:%d", q.ID, i+1, j+1, line[j], l, c)
				}
			}
		}
	}
}
