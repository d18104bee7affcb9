// Package locale says which languages dexbridge speaks to employees and picks one
// for a reader: from an Accept-Language header (Negotiate) or a stored preference
// such as a subscription's (Match), and picks that locale's text from a set of
// translations (Pick). English is the base language: every text exists in it, and
// a text missing in a locale falls back to it.
package locale

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// Default is the base language of every text, and the answer when nothing else fits.
const Default = "en"

// Supported are the locales dexbridge ships texts for, Default first.
var supported = []string{Default, "de", "fr"}

// matcher picks among the supported locales; the first (English) is its fallback.
var matcher = language.NewMatcher(tags(supported))

func tags(ls []string) []language.Tag {
	out := make([]language.Tag, len(ls))
	for i, l := range ls {
		out[i] = language.MustParse(l)
	}
	return out
}

// Supported returns the supported locales, Default first.
func Supported() []string { return slices.Clone(supported) }

// Translated returns the supported locales other than Default: those a file may
// translate its texts into.
func Translated() []string { return slices.Clone(supported[1:]) }

// IsSupported reports whether l is one of the supported locales, as written.
func IsSupported(l string) bool { return slices.Contains(supported, l) }

// maxHeader bounds the Accept-Language value read: a real one is a few dozen bytes.
const maxHeader = 512

// Negotiate picks the supported locale that best fits an Accept-Language header
// value (RFC 9110: "de-CH, fr;q=0.8"): de-CH gives de, fr-FR gives fr; an empty,
// malformed or unsupported header gives Default. It never fails.
func Negotiate(acceptLanguage string) string {
	if len(acceptLanguage) > maxHeader {
		acceptLanguage = acceptLanguage[:maxHeader]
	}
	prefs, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(prefs) == 0 {
		return Default
	}
	return match(prefs...)
}

// Match picks the supported locale that best fits one language tag ("de-CH" gives
// de); an empty, malformed or unsupported tag gives Default.
func Match(tag string) string {
	t, err := language.Parse(strings.TrimSpace(tag))
	if err != nil {
		return Default
	}
	return match(t)
}

func match(prefs ...language.Tag) string {
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return Default
	}
	return supported[i]
}

// Pick returns the text for tag from texts, which maps locales to texts: the text of
// the supported locale that fits tag best, else the Default one. A reader's tag need
// not be exact: "de-CH" picks the "de" text.
func Pick(texts map[string]string, tag string) string {
	if t, ok := texts[Match(tag)]; ok && t != "" {
		return t
	}
	return texts[Default]
}

// Check says whether l may key a translation in a file: a supported locale other
// than Default (the base texts are the file's own keys), written as listed.
func Check(l string) error {
	switch {
	case l == Default:
		return fmt.Errorf("%q is the base language: give the English texts in the usual keys, not as a translation", l)
	case IsSupported(l):
		return nil
	}
	hint := ""
	if m := Match(l); m != Default {
		hint = fmt.Sprintf(" (did you mean %q?)", m)
	}
	return fmt.Errorf("unsupported locale %q%s: translations may be given in %s", l, hint, strings.Join(Translated(), ", "))
}
