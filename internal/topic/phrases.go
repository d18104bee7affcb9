package topic

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/dexbridge/dexbridge/internal/config"
)

// Phrases are how employees say they have a topic's problem ("I cannot print
// anything"): the catalogue serves them, so that a chatbot can tell which topic a
// message is about. They are matched on their words (NormalizePhrase), so two
// phrases that differ only in case or punctuation are one.

// allPhrases is every phrase of the topic, English and translated, with its key.
func (t *Topic) allPhrases() (keys, phrases []string) {
	for i, p := range t.Phrases {
		keys, phrases = append(keys, fmt.Sprintf("phrases[%d]", i)), append(phrases, p)
	}
	for _, loc := range sortedKeys(t.Translations) {
		for i, p := range t.Translations[loc].Phrases {
			keys, phrases = append(keys, fmt.Sprintf("translations.%s.phrases[%d]", loc, i)), append(phrases, p)
		}
	}
	return keys, phrases
}

// NormalizePhrase is a phrase's words, lower case, joined by single spaces: letters
// and digits only ("The printer doesn't work!" is "the printer doesn t work").
func NormalizePhrase(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}), " ")
}

// checkPhrases refuses a phrase without a word and a phrase given twice in the
// list at key (phrases, translations.de.phrases).
func checkPhrases(at string, phrases []string) []error {
	var errs []error
	seen := map[string]int{}
	for i, p := range phrases {
		key := fmt.Sprintf("%s[%d]", at, i)
		n := NormalizePhrase(p)
		if n == "" {
			errs = append(errs, &config.Error{Key: key, Reason: "a phrase needs at least one word"})
			continue
		}
		if j, dup := seen[n]; dup {
			errs = append(errs, &config.Error{Key: key, Reason: fmt.Sprintf("the same words as %s[%d]", at, j)})
			continue
		}
		seen[n] = i
	}
	return errs
}
