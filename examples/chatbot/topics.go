package main

import (
	"strings"
	"unicode"
)

// catalogueTopic is what the bot reads of a topic in the catalogue.
type catalogueTopic struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Phrases []string `json:"phrases"`
}

// pickTopic is the bot's whole natural-language understanding: the topic one of
// whose phrases shares the most telling words with what the employee said, words of
// its title counting once more, or "" when none does, or two do equally. A word
// tells more the fewer topics use it: "print" points at one topic, "work" at many. A
// real bot would hand the phrases to its own language model as training utterances.
func pickTopic(text string, topics []catalogueTopic) string {
	said := map[string]bool{}
	for _, w := range words(text) {
		said[w] = true
	}
	// used counts the topics whose title or phrases use each word.
	used := map[string]int{}
	titles := make([][]string, len(topics))
	phrases := make([][][]string, len(topics))
	for k, t := range topics {
		titles[k] = words(t.Title)
		seen := map[string]bool{}
		for _, ws := range append([][]string{titles[k]}, phrasesWords(t.Phrases)...) {
			for _, w := range ws {
				if !seen[w] {
					seen[w] = true
					used[w]++
				}
			}
		}
		phrases[k] = phrasesWords(t.Phrases)
	}
	weigh := func(ws []string) float64 {
		s := 0.0
		for _, w := range ws {
			if said[w] {
				s += 1 / float64(used[w])
			}
		}
		return s
	}
	best, second, pick := 0.0, 0.0, ""
	for k, t := range topics {
		score := 0.0
		for _, ws := range phrases[k] {
			score = max(score, weigh(ws))
		}
		score += weigh(titles[k])
		switch {
		case score > best:
			best, second, pick = score, best, t.ID
		case score > second:
			second = score
		}
	}
	if best < 0.5 || best == second {
		return ""
	}
	return pick
}

func phrasesWords(phrases []string) [][]string {
	out := make([][]string, len(phrases))
	for k, p := range phrases {
		out[k] = words(p)
	}
	return out
}

// words are the telling words of a text: lower case, letters and digits, without
// the words every complaint has ("my", "is", "not", "doesn't"), each reduced to its
// stem so that "printer", "printing" and "prints" are one.
func words(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}) {
		if !isStopWord(w) {
			out = append(out, stem(w))
		}
	}
	return out
}

// isStopWord says whether w is one of the words every complaint has.
func isStopWord(w string) bool {
	switch w {
	case "i", "me", "my", "mine", "you", "your", "we", "our", "it", "its", "this", "that", "the", "a",
		"an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did",
		"doesn", "don", "didn", "isn", "aren", "wasn", "won", "can", "cannot", "couldn", "t", "s", "m",
		"not", "no", "never", "any", "anything", "all", "some", "something", "everything", "to", "of",
		"on", "in", "at", "for", "with", "from", "by", "as", "so", "very", "really", "just", "still",
		"again", "please", "help", "keep", "keeps", "kept", "since", "when", "what", "why", "how":
		return true
	}
	return false
}

// stem strips the common English endings, enough to match "crashing" with "crash".
func stem(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "xes"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && len(w) > 3:
		w = w[:len(w)-1]
	}
	for _, suffix := range []string{"ing", "ed", "er"} {
		if strings.HasSuffix(w, suffix) && len(w) > len(suffix)+2 {
			return w[:len(w)-len(suffix)]
		}
	}
	return w
}
