package events

import (
	"testing"

	"github.com/dexbridge/dexbridge/internal/locale"
)

func localizedEvent() ProactiveEvent {
	return ProactiveEvent{
		Status: "open", Message: "Hi, shall I?",
		Remediations: []SuggestedRemedy{{ID: "fix", Title: "Fix it", RemoteAction: "#fix"}, {ID: "tip", Title: "A tip", Message: "Restart."}},
		Diagnosis: &ProactiveDiagnosis{
			Findings:     []ProactiveFinding{{Rule: "r1", Title: "Broken"}},
			Rules:        []RuleResult{{Rule: "r1", Title: "Broken"}, {Rule: "r2", Title: "Slow"}},
			Remediations: []SuggestedRemedy{{ID: "fix", Title: "Fix it"}},
		},
		Texts: map[string]ProactiveTexts{
			"en": {Message: "Hi, shall I?"},
			"de": {Message: "Hallo, soll ich?", Rules: map[string]string{"r1": "Kaputt"},
				Remediations: map[string]RemedyText{"fix": {Title: "Reparieren"}, "tip": {Title: "Ein Tipp", Message: "Neu starten."}}},
		},
	}
}

func TestProactiveEventIn(t *testing.T) {
	e := localizedEvent()
	de := e.In("de-CH")
	if de.Locale != "de" || de.Texts != nil || de.Message != "Hallo, soll ich?" {
		t.Errorf("de: got locale %q texts %v message %q", de.Locale, de.Texts, de.Message)
	}
	if de.Diagnosis.Findings[0].Title != "Kaputt" || de.Diagnosis.Rules[0].Title != "Kaputt" || de.Diagnosis.Rules[1].Title != "Slow" {
		t.Errorf("de diagnosis: got %+v", de.Diagnosis)
	}
	if de.Remediations[0].Title != "Reparieren" || de.Remediations[1].Title != "Ein Tipp" || de.Remediations[1].Message != "Neu starten." ||
		de.Diagnosis.Remediations[0].Title != "Reparieren" {
		t.Errorf("de remediations: got %+v and %+v", de.Remediations, de.Diagnosis.Remediations)
	}
	// e itself is unchanged: another reader gets its own language.
	if e.Message != "Hi, shall I?" || e.Diagnosis.Findings[0].Title != "Broken" || e.Remediations[0].Title != "Fix it" || e.Texts == nil {
		t.Errorf("In changed the event: %+v", e)
	}
	fr := e.In("fr")
	if fr.Locale != "en" || fr.Message != "Hi, shall I?" || fr.Diagnosis.Findings[0].Title != "Broken" {
		t.Errorf("fr (not rendered): got locale %q message %q, want the English texts", fr.Locale, fr.Message)
	}
	old := ProactiveEvent{Status: "open", Message: "Hi"}
	if got := old.In("de"); got.Locale != "en" || got.Message != "Hi" {
		t.Errorf("an event without texts: got %q %q, want English", got.Locale, got.Message)
	}
}

func TestProactiveEventMessages(t *testing.T) {
	e := localizedEvent()
	if got := locale.Pick(e.Messages(), "de-AT"); got != "Hallo, soll ich?" {
		t.Errorf("pick de-AT: got %q", got)
	}
	if got := locale.Pick(e.Messages(), "fr"); got != "Hi, shall I?" {
		t.Errorf("pick fr: got %q, want the English message", got)
	}
	e.Status, e.Message, e.CloseMessage = "closed", "Solved.", "Solved."
	e.Texts["de"] = ProactiveTexts{Message: "Hallo, soll ich?", CloseMessage: "Gelöst."}
	if got := locale.Pick(e.Messages(), "de"); got != "Gelöst." {
		t.Errorf("closed, de: got %q, want the German recovery message", got)
	}
	if got := e.In("de"); got.Message != "Gelöst." || got.CloseMessage != "Gelöst." {
		t.Errorf("closed, In(de): got %q / %q", got.Message, got.CloseMessage)
	}
}
