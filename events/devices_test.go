package events_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func TestUserMatches(t *testing.T) {
	tests := []struct {
		key, value string
		want       []events.UserMatch
	}{
		{events.KeyUsername, "jdoe", []events.UserMatch{{events.KeyUsername, "jdoe", events.KeyUsername}}},
		{events.KeyUsername, `CORP\jdoe`, []events.UserMatch{
			{events.KeyUsername, `CORP\jdoe`, events.KeyUsername},
			{events.KeyUsername, "jdoe", events.MatchedByUsernameWithoutDomain}}},
		{events.KeyUsername, "jdoe@example.com", []events.UserMatch{
			{events.KeyUsername, "jdoe@example.com", events.KeyUsername},
			{events.KeyUPN, "jdoe@example.com", events.KeyUPN}}},
		{events.KeyUPN, "jdoe@example.com", []events.UserMatch{{events.KeyUPN, "jdoe@example.com", events.KeyUPN}}},
		{events.KeyEmail, "jdoe@example.com", []events.UserMatch{{events.KeyEmail, "jdoe@example.com", events.KeyEmail}}},
		{events.KeySID, "S-1-5-21-1-2-3-1001", []events.UserMatch{{events.KeySID, "S-1-5-21-1-2-3-1001", events.KeySID}}},
		{events.KeyDeviceName, "PC-1", nil},
		{events.KeyCollectorUID, "cf05120d-508a-4b9f-a596-6c3865d118a1", nil},
	}
	for _, tt := range tests {
		if got := events.UserMatches(tt.key, tt.value); !slices.Equal(got, tt.want) {
			t.Errorf("%s=%s: got %v, want %v", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestUsernameForms(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"jdoe", true},
		{"Jane O'Neil", true},
		{`CORP\jdoe`, true},
		{`corp.example.com\jdoe`, true},
		{"jdoe@example.com", true},
		{"jdoe@corp", true},
		{`CORP\`, false},
		{`CORP\\jdoe`, false},
		{`CORP\jdoe\x`, false},
		{`CORP\jdoe@example.com`, false},
		{`MY CORP\jdoe`, false},
		{`CORP\ jdoe`, false},
		{"jdoe@", false},
		{"jdoe@@example.com", false},
		{"jdoe@example..com", false},
		{"jdoe@-example.com", false},
		{"jdoe@exa mple.com", false},
	}
	for _, tt := range tests {
		err := events.CheckIdentifier(events.KeyUsername, tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%q: got %v, want ok %v", tt.value, err, tt.ok)
		}
		if err != nil && problem.From(err).Field != events.KeyUsername {
			t.Errorf("%q: got field %q, want username", tt.value, problem.From(err).Field)
		}
	}
}

// FuzzUserMatches: whatever a chatbot sends as a user name, the check either refuses
// it naming the parameter or accepts it, and then every way it may match carries a
// value no longer than it, with no NQL wildcard, and the match as given first.
func FuzzUserMatches(f *testing.F) {
	for _, s := range []string{"jdoe", `CORP\jdoe`, "jdoe@example.com", `\`, "@", `a\b@c`, "j*", "jd\noe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if err := events.CheckIdentifier(events.KeyUsername, value); err != nil {
			if p := problem.From(err); p.Field != events.KeyUsername || p.Code != problem.Invalid {
				t.Fatalf("%q: got %+v, want invalid_request naming username", value, p)
			}
			return
		}
		ms := events.UserMatches(events.KeyUsername, value)
		if len(ms) == 0 || ms[0] != (events.UserMatch{Key: events.KeyUsername, Value: value, MatchedBy: events.KeyUsername}) {
			t.Fatalf("%q: got %v, want the name as given first", value, ms)
		}
		for _, m := range ms {
			if m.Value == "" || len(m.Value) > len(value) || strings.Contains(m.Value, "*") {
				t.Fatalf("%q: match %+v", value, m)
			}
			if err := events.CheckIdentifier(m.Key, m.Value); err != nil {
				t.Fatalf("%q: match %+v does not pass its own key's check: %v", value, m, err)
			}
		}
	})
}
