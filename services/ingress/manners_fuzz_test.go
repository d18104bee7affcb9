package ingress

import "testing"

func TestAcceptable(t *testing.T) {
	json := []string{"application/json", "application/problem+json"}
	for header, want := range map[string]bool{
		"":                                   true,
		"application/json":                   true,
		"APPLICATION/JSON":                   true,
		"application/problem+json;q=0.1":     true,
		"application/*":                      true,
		"*/*":                                true,
		"text/csv":                           false,
		"text/*, image/png":                  false,
		"application/json;q=0":               false,
		"application/json;q=0, */*;q=1":      true, // problem+json is still allowed
		"application/*;q=0, */*":             false,
		"application/json;q=0.000":           false,
		"application/json;q=1.5":             true, // unreadable weight: the element is dropped, nothing is left
		"application/json;q=1.5, text/plain": false,
		"text/plain, ,,":                     false,
	} {
		if got := acceptable(header, json); got != want {
			t.Errorf("Accept %q: got %v, want %v (%+v)", header, got, want, parseAccept(header))
		}
	}
	if !acceptable("text/event-stream", append(json, "text/event-stream")) {
		t.Error("text/event-stream on the stream")
	}
}

// FuzzParseAccept: any header parses without panicking into weights within [0, 1]
// and lowercase tokens; a header of which nothing parses allows everything.
func FuzzParseAccept(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json;q=0.5, text/*;q=0", "a/b;q=1.000;x=y", ";;,/,*/x", "text/html;q=0.", "x/y;Q=0.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ranges := parseAccept(s)
		for _, m := range ranges {
			if m.q < 0 || m.q > 1 || !token(m.typ) || !token(m.sub) || (m.typ == "*" && m.sub != "*") {
				t.Fatalf("%q: bad range %+v", s, m)
			}
		}
		if len(ranges) == 0 && !acceptable(s, []string{"application/json"}) {
			t.Fatalf("%q: nothing parsed, yet refused", s)
		}
		_ = acceptable(s, []string{"application/json", "text/event-stream", "*/*"})
	})
}
