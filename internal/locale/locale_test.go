package locale

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"", "en"},
		{"de-CH", "de"},
		{"de-CH, de;q=0.9, en;q=0.8", "de"},
		{"fr-FR;q=0.8", "fr"},
		{"it, fr-FR;q=0.8", "fr"},
		{"fr-CA", "fr"},
		{"ja", "en"},
		{"pt-BR, es;q=0.9", "en"},
		{"en-GB", "en"},
		{"*", "en"},
		{"en;q=0.5, de;q=0.9", "de"},
		{"not a language;;;", "en"},
		{strings.Repeat("de-", 1000), "en"},
	} {
		if got := Negotiate(tc.header); got != tc.want {
			t.Errorf("Negotiate(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestMatchAndPick(t *testing.T) {
	texts := map[string]string{"en": "Hello", "de": "Hallo"}
	for _, tc := range []struct{ tag, want string }{
		{"de", "Hallo"}, {"de-AT", "Hallo"}, {"fr", "Hello"}, {"", "Hello"}, {"xx-!!", "Hello"}, {"en-US", "Hello"},
	} {
		if got := Pick(texts, tc.tag); got != tc.want {
			t.Errorf("Pick(%q) = %q, want %q", tc.tag, got, tc.want)
		}
	}
	if got := Pick(map[string]string{"en": "Hello", "de": ""}, "de"); got != "Hello" {
		t.Errorf("an empty translation: got %q, want the English text", got)
	}
	if got := Pick(nil, "de"); got != "" {
		t.Errorf("no texts: got %q, want empty", got)
	}
}

func TestCheck(t *testing.T) {
	for _, l := range []string{"de", "fr"} {
		if err := Check(l); err != nil {
			t.Errorf("Check(%q) = %v, want nil", l, err)
		}
	}
	for l, want := range map[string]string{
		"en":    "base language",
		"de-CH": `did you mean "de"`,
		"xx":    "unsupported locale",
		"DE":    `did you mean "de"`,
	} {
		err := Check(l)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want an error with %q", l, err, want)
		}
	}
}

// FuzzNegotiate: any header gives a supported locale, without panicking.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "de-CH", "fr-FR;q=0.8", "en;q=0.5, de;q=0.9", "*;q=0", "x-klingon", "de;q=abc", ",,,;", "zh-Hant-TW"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got := Negotiate(h); !IsSupported(got) {
			t.Fatalf("Negotiate(%q) = %q, not a supported locale", h, got)
		}
		if got := Match(h); !IsSupported(got) {
			t.Fatalf("Match(%q) = %q, not a supported locale", h, got)
		}
	})
}
