package main

import (
	"slices"
	"testing"

	"github.com/dexbridge/dexbridge/internal/topic"
)

// shipped is the catalogue of the repository's topics for platform ("" for all), as
// GET /api/v1/topics serves it.
func shipped(t testing.TB, platform string) []catalogueTopic {
	t.Helper()
	cat, err := topic.LoadDir("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	var out []catalogueTopic
	for _, tp := range cat.List() {
		if platform == "" || tp.SupportsPlatform(platform) {
			out = append(out, catalogueTopic{ID: tp.ID, Title: tp.Title, Phrases: tp.Phrases})
		}
	}
	return out
}

func TestPickTopicFromWhatEmployeesSay(t *testing.T) {
	windows := shipped(t, "Windows")
	for _, tt := range []struct{ said, want string }{
		{"I cannot print anything", "printing"},
		{"The printer doesn't work", "printing"},
		{"Outlook keeps crashing", "outlook"},
		{"my PC is slow", "slow_pc"},
		{"MY PRINTER!!! is jammed with documents", "printing"},
		{"outlook won't start", "outlook"},
		{"I can't send any emails since this morning", "outlook"},
		{"my files stopped syncing to OneDrive", "onedrive"},
		{"the laptop takes ages to start up", "slow_pc"},
		{"I'm running out of disk space", "device_bad_health"},
		{"can you check my computer please", "l1_device_checklist"},
		{"hello", ""},
		{"what is the weather tomorrow", ""},
		{"", ""},
	} {
		if got := pickTopic(tt.said, windows); got != tt.want {
			t.Errorf("%q: got topic %q, want %q", tt.said, got, tt.want)
		}
	}
	// A Mac's catalogue has no printing topic: the bot does not guess one.
	if got := pickTopic("I cannot print anything", shipped(t, "macOS")); got != "" {
		t.Errorf("printing on a Mac: got %q, want none", got)
	}
}

// Every phrase a topic declares picks that topic: the shipped phrases do not step on
// each other's toes.
func TestEveryShippedPhrasePicksItsTopic(t *testing.T) {
	all := shipped(t, "")
	for _, tp := range all {
		if len(tp.Phrases) == 0 {
			t.Errorf("topic %s has no phrases", tp.ID)
		}
		for _, p := range tp.Phrases {
			if got := pickTopic(p, all); got != tp.ID {
				t.Errorf("%q (a phrase of %s): got topic %q", p, tp.ID, got)
			}
		}
	}
}

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		"The printer doesn't work!":    {"print", "work"},
		"Outlook keeps crashing":       {"outlook", "crash"},
		"My files are not syncing.":    {"file", "sync"},
		"Print jobs, print queues":     {"print", "job", "print", "queue"},
		"batteries":                    {"battery"},
		"  \t ":                        nil,
		"Mein Drucker geht nicht 100%": {"mein", "druck", "geht", "nicht", "100"},
	} {
		if got := words(in); !slices.Equal(got, want) {
			t.Errorf("words(%q): got %q, want %q", in, got, want)
		}
	}
}

func FuzzPickTopic(f *testing.F) {
	topics := shipped(f, "")
	for _, s := range []string{"I cannot print anything", "Outlook keeps crashing", "", "ies", "xes s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, said string) {
		got := pickTopic(said, topics)
		if got != "" && !slices.ContainsFunc(topics, func(c catalogueTopic) bool { return c.ID == got }) {
			t.Errorf("%q: picked %q, not a topic of the catalogue", said, got)
		}
		for _, w := range words(said) {
			if w == "" {
				t.Errorf("%q: an empty word", said)
			}
		}
	})
}

func TestPickPerson(t *testing.T) {
	names := []string{"Tina Meier", "Tomas Meier"}
	for _, tt := range []struct {
		answer string
		want   int
		ok     bool
	}{
		{"Tina", 0, true},
		{"I am Tomas.", 1, true},
		{"tomas meier", 1, true},
		{"Meier", 0, false}, // both are
		{"Tina and Tomas", 0, false},
		{"neither", 0, false},
		{"", 0, false},
	} {
		got, ok := pickPerson(tt.answer, names)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%q: got %d %v, want %d %v", tt.answer, got, ok, tt.want, tt.ok)
		}
	}
	if got := orList(names); got != "Tina Meier or Tomas Meier" {
		t.Errorf("orList: %q", got)
	}
	for answer, want := range map[string]bool{"yes": true, "Yes, please": true, "ok.": true, "no": false, "": false, "not now": false} {
		if isYes(answer) != want {
			t.Errorf("isYes(%q) = %v", answer, !want)
		}
	}
}

func FuzzPickPerson(f *testing.F) {
	for _, s := range []string{"Tina", "I am Tomas Meier", "", "meier meier", "tina, tomas"} {
		f.Add(s)
	}
	names := []string{"Tina Meier", "Tomas Meier", "", "Ana"}
	f.Fuzz(func(t *testing.T, answer string) {
		if k, ok := pickPerson(answer, names); ok && (k < 0 || k >= len(names) || names[k] == "") {
			t.Errorf("%q: picked %d", answer, k)
		}
		_ = isYes(answer)
	})
}
