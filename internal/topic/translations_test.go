package topic

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
)

const translated = good + `translations:
  de:
    title: Beispiel
    rules:
      r1: {title: Etwas stimmt nicht}
  fr:
    title: Exemple
    remediations:
      fix: {title: Réparer}
`

func TestTranslationsFallBackToEnglish(t *testing.T) {
	top, err := Parse([]byte(translated))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ loc, title, desc, rule, fix string }{
		{"en", "Sample", "A sample topic.", "Something is wrong", "Fix it"},
		{"de", "Beispiel", "A sample topic.", "Etwas stimmt nicht", "Fix it"},
		{"de-CH", "Beispiel", "A sample topic.", "Etwas stimmt nicht", "Fix it"},
		{"fr", "Exemple", "A sample topic.", "Something is wrong", "Réparer"},
		{"ja", "Sample", "A sample topic.", "Something is wrong", "Fix it"},
	} {
		d := events.Diagnosis{
			Rules:        []events.RuleResult{{Rule: "r1", Title: "Something is wrong"}},
			Findings:     []events.Finding{{Rule: "r1", Title: "Something is wrong"}},
			Remediations: []events.SuggestedRemedy{{ID: "fix", Title: "Fix it", RemoteAction: "#fix_it"}},
		}
		top.LocalizeDiagnosis(&d, tc.loc)
		got := []string{top.TitleIn(tc.loc), top.DescriptionIn(tc.loc), d.Rules[0].Title, d.Findings[0].Title, d.Remediations[0].Title}
		want := []string{tc.title, tc.desc, tc.rule, tc.rule, tc.fix}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: got %q, want %q", tc.loc, got, want)
		}
	}
	if got, want := top.MissingTranslations("de"), []string{"translations.de.description", "translations.de.remediations.fix.title"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("missing de: got %q, want %q", got, want)
	}
}

func TestBadTranslationsAreRefused(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown locale": {good + "translations:\n  de: {title: Beispiel}\n  xx:\n    title: X\n",
			`line 21: translations.xx: unsupported locale "xx"`},
		"a region": {good + "translations:\n  de-CH: {title: Beispiel}\n",
			`line 20: translations.de-CH: unsupported locale "de-CH" (did you mean "de"?)`},
		"english":      {good + "translations:\n  en: {title: Sample}\n", `line 20: translations.en: "en" is the base language`},
		"unknown rule": {good + "translations:\n  de:\n    rules: {r9: {title: X}}\n", `translations.de.rules.r9: no rule "r9" in this topic`},
		"unknown remediation": {good + "translations:\n  de:\n    remediations: {nope: {title: X}}\n",
			`translations.de.remediations.nope: no remediation "nope" in this topic`},
		"message of a remote action": {good + "translations:\n  de:\n    remediations: {fix: {message: X}}\n",
			`translations.de.remediations.fix.message: remediation fix runs a remote action`},
		"unknown key": {good + "translations:\n  de: {titel: X}\n", "titel"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "sample.yaml", tc.yaml)
			_, err := LoadDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), dir) {
				t.Errorf("got %v, want it to name the file", err)
			}
		})
	}
}

// The shipped topics speak every supported locale: nothing falls back to English.
func TestShippedTopicsAreTranslated(t *testing.T) {
	cat, err := LoadDir("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range cat.List() {
		for _, loc := range []string{"de", "fr"} {
			if missing := top.MissingTranslations(loc); len(missing) > 0 {
				t.Errorf("%s: no %s translation of %s", top.File, loc, strings.Join(missing, ", "))
			}
		}
	}
}

// FuzzParse: any document is a topic or an error, never a panic (the translations'
// locale lines are read from the YAML nodes).
func FuzzParse(f *testing.F) {
	f.Add([]byte(translated))
	f.Add([]byte(good + "translations:\n  xx: {title: X}\n"))
	f.Add([]byte(good + "translations: [de]\n"))
	f.Add([]byte("translations:\n  - de\n"))
	if raw, err := os.ReadFile("../../topics/outlook.yaml"); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		top, err := Parse(raw)
		if err == nil {
			for _, loc := range []string{"de", "fr"} {
				_ = top.MissingTranslations(loc)
				_ = top.TitleIn(loc)
			}
		}
	})
}

func TestTranslatedPhrases(t *testing.T) {
	top, err := Parse([]byte(withPhrases(`["I cannot print anything", "The printer does not work"]`) + `translations:
  de:
    phrases: ["Ich kann nichts drucken", "the printer does NOT work!"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]string{
		"de-CH": "Ich kann nichts drucken|the printer does NOT work!|I cannot print anything",
		"fr":    "I cannot print anything|The printer does not work",
		"en":    "I cannot print anything|The printer does not work",
	} {
		if got := strings.Join(top.PhrasesIn(loc), "|"); got != want {
			t.Errorf("%s: got %q, want %q", loc, got, want)
		}
	}
	if got := top.MissingTranslations("fr"); !slices.Contains(got, "translations.fr.phrases") {
		t.Errorf("missing fr: got %q, want translations.fr.phrases among them", got)
	}
	if got := top.MissingTranslations("de"); slices.Contains(got, "translations.de.phrases") {
		t.Errorf("missing de: got %q, want no phrases", got)
	}

	_, err = Parse([]byte(good + "translations:\n  de:\n    phrases: [\"Drucken geht nicht\", \"drucken GEHT nicht!\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "translations.de.phrases[1]") || !strings.Contains(err.Error(), "translations.de.phrases[0]") {
		t.Errorf("a phrase given twice in a translation: got %v", err)
	}
}
