package topic

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/locale"
	"github.com/dexbridge/dexbridge/internal/yamlnode"
)

// Translation is a topic's employee-facing texts in one locale: what a chatbot shows
// an employee (the topic's title and description, the titles of the problems its
// rules find, the titles and messages of its remediations) and the phrases employees
// say it with. A text it leaves out is said in English.
type Translation struct {
	Title        string                     `yaml:"title"`
	Description  string                     `yaml:"description"`
	Phrases      []string                   `yaml:"phrases"`
	Rules        map[string]RuleText        `yaml:"rules"`        // by rule id
	Remediations map[string]RemediationText `yaml:"remediations"` // by remediation id
}

// RuleText is a rule's title in one locale.
type RuleText struct {
	Title string `yaml:"title"`
}

// RemediationText is a remediation's title, and its message for a message
// remediation, in one locale.
type RemediationText struct {
	Title   string `yaml:"title"`
	Message string `yaml:"message"`
}

// in returns the translation into loc (the zero one for English or none).
func (t *Topic) in(loc string) Translation { return t.Translations[locale.Match(loc)] }

// or is s, else the English text.
func or(s, english string) string {
	if s != "" {
		return s
	}
	return english
}

// TitleIn is the topic's title in loc, English when not translated.
func (t *Topic) TitleIn(loc string) string { return or(t.in(loc).Title, t.Title) }

// DescriptionIn is the topic's description in loc, English when not translated.
func (t *Topic) DescriptionIn(loc string) string { return or(t.in(loc).Description, t.Description) }

// PhrasesIn is how employees say the topic's problem in loc: its phrases in loc, then
// the English ones (employees often write English to a chatbot whatever its language,
// and the English phrases name the software as they do), each set of words once.
func (t *Topic) PhrasesIn(loc string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, p := range append(slices.Clip(t.in(loc).Phrases), t.Phrases...) {
		if n := NormalizePhrase(p); !seen[n] {
			seen[n] = true
			out = append(out, p)
		}
	}
	return out
}

// RuleTitleIn is the title of rule id in loc; english is returned when the rule has
// no translation (or the topic no such rule).
func (t *Topic) RuleTitleIn(loc, id, english string) string {
	return or(t.in(loc).Rules[id].Title, english)
}

// RemediationIn is the title and message of remediation id in loc, each falling back
// to the English one given.
func (t *Topic) RemediationIn(loc, id, title, message string) (string, string) {
	tr := t.in(loc).Remediations[id]
	if message != "" {
		message = or(tr.Message, message)
	}
	return or(tr.Title, title), message
}

// LocalizeDiagnosis puts a diagnosis of the topic into loc: its rules' and findings'
// titles, its remediations' titles and messages. Operator texts (verdict reasons,
// why a rule was not evaluated) stay in English.
func (t *Topic) LocalizeDiagnosis(d *events.Diagnosis, loc string) {
	for i := range d.Rules {
		d.Rules[i].Title = t.RuleTitleIn(loc, d.Rules[i].Rule, d.Rules[i].Title)
	}
	for i := range d.Findings {
		d.Findings[i].Title = t.RuleTitleIn(loc, d.Findings[i].Rule, d.Findings[i].Title)
	}
	for i := range d.Remediations {
		r := &d.Remediations[i]
		r.Title, r.Message = t.RemediationIn(loc, r.ID, r.Title, r.Message)
	}
}

// MissingTranslations lists the keys of the topic's employee-facing texts that have
// no translation into loc (translations.<loc>.title, ...), in file order; they are
// said in English.
func (t *Topic) MissingTranslations(loc string) []string {
	tr := t.Translations[loc]
	key := "translations." + loc + "."
	var out []string
	if tr.Title == "" {
		out = append(out, key+"title")
	}
	if tr.Description == "" {
		out = append(out, key+"description")
	}
	if len(t.Phrases) > 0 && len(tr.Phrases) == 0 {
		out = append(out, key+"phrases")
	}
	for _, r := range t.Rules {
		if tr.Rules[r.ID].Title == "" {
			out = append(out, key+"rules."+r.ID+".title")
		}
	}
	for _, r := range t.Remediations {
		rt := tr.Remediations[r.ID]
		if rt.Title == "" {
			out = append(out, key+"remediations."+r.ID+".title")
		}
		if r.Message != "" && rt.Message == "" {
			out = append(out, key+"remediations."+r.ID+".message")
		}
	}
	return out
}

// checkTranslations checks that each translation is into a supported locale (naming
// the line of a bad one) and translates only what the topic has.
func (t *Topic) checkTranslations(raw []byte) []error {
	var errs []error
	lines := translationLines(raw)
	for _, loc := range sortedKeys(t.Translations) {
		tr := t.Translations[loc]
		key := "translations." + loc
		if err := locale.Check(loc); err != nil {
			errs = append(errs, lineError(lines[loc], key, err.Error()))
			continue
		}
		errs = append(errs, checkPhrases(key+".phrases", tr.Phrases)...)
		for _, id := range sortedKeys(tr.Rules) {
			if !slices.ContainsFunc(t.Rules, func(r Rule) bool { return r.ID == id }) {
				errs = append(errs, &config.Error{Key: key + ".rules." + id, Reason: fmt.Sprintf("no rule %q in this topic", id)})
			}
		}
		for _, id := range sortedKeys(tr.Remediations) {
			r, ok := t.Remediation(id)
			switch {
			case !ok:
				errs = append(errs, &config.Error{Key: key + ".remediations." + id, Reason: fmt.Sprintf("no remediation %q in this topic", id)})
			case r.Message == "" && tr.Remediations[id].Message != "":
				errs = append(errs, &config.Error{Key: key + ".remediations." + id + ".message",
					Reason: "remediation " + id + " runs a remote action: only a message remediation has a message"})
			}
		}
	}
	return errs
}

// lineError is a config error that says on which line of its file it is (0: unknown).
func lineError(line int, key, reason string) error {
	if line > 0 {
		return &config.Error{Key: fmt.Sprintf("line %d: %s", line, key), Reason: reason}
	}
	return &config.Error{Key: key, Reason: reason}
}

// translationLines is the line of each locale key under the top-level translations.
func translationLines(raw []byte) map[string]int {
	var doc yaml.Node
	out := map[string]int{}
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	if tr := yamlnode.Value(doc.Content[0], "translations"); tr != nil {
		for k, line := range keyLines(tr) {
			out[k] = line
		}
	}
	return out
}

// keyLines is the line of each key of a YAML mapping node.
func keyLines(m *yaml.Node) map[string]int {
	out := map[string]int{}
	if m == nil || m.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i].Line
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
