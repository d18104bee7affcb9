package topics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// inLanguage sends a request with an Accept-Language header and decodes the answer
// into out; it returns the answer's Content-Language.
func (e *env) inLanguage(method, path, acceptLanguage, body string, out any) string {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-API-Key", e.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("%s %s (%s): got %d %s", method, path, acceptLanguage, rec.Code, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		e.t.Fatal(err)
	}
	if vary := rec.Header().Values("Vary"); !strings.Contains(strings.Join(vary, ","), "Accept-Language") {
		e.t.Errorf("%s %s: Vary %q, want Accept-Language", method, path, vary)
	}
	return rec.Header().Get("Content-Language")
}

// TestTopicsAndDiagnosesSpeakTheReadersLanguage: the catalogue and diagnoses of fleet
// devices drawn at random from both tenants (Windows and macOS) come in the language
// Accept-Language asks for, every employee-facing text as the topic file translates
// it, with Content-Language; an unsupported language gets English.
func TestTopicsAndDiagnosesSpeakTheReadersLanguage(t *testing.T) {
	e := newEnv(t, envOptions{})
	cat, err := topic.LoadDir(filepath.Join(testenv.RepoRoot(t), "topics"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ header, want string }{
		{"de-CH", "de"}, {"fr-FR;q=0.8", "fr"}, {"ja, pt;q=0.5", "en"}, {"", "en"},
	} {
		var list api.Topics
		if got := e.inLanguage(http.MethodGet, "/api/v1/topics", tc.header, "", &list); got != tc.want {
			t.Errorf("topics (%q): Content-Language %q, want %q", tc.header, got, tc.want)
		}
		for _, w := range list.Topics {
			top, _ := cat.Get(w.ID)
			if w.Title != top.TitleIn(tc.want) || w.Description != top.DescriptionIn(tc.want) {
				t.Errorf("topic %s (%s): got %q, want %q", w.ID, tc.want, w.Title, top.TitleIn(tc.want))
			}
			if got, want := strings.Join(w.Phrases, "|"), strings.Join(top.PhrasesIn(tc.want), "|"); got != want {
				t.Errorf("topic %s (%s): phrases %q, want %q", w.ID, tc.want, got, want)
			}
		}
	}
	var one events.Topic
	if got := e.inLanguage(http.MethodGet, "/api/v1/topics/outlook", "de-DE", "", &one); got != "de" || one.Title != "Probleme mit Microsoft Outlook" {
		t.Errorf("outlook in de-DE: got %q (%s), want the German title", one.Title, got)
	}
	if len(one.Phrases) == 0 || one.Phrases[0] != "Outlook stürzt ständig ab" {
		t.Errorf("outlook in de-DE: phrases %q, want the German ones first", one.Phrases)
	}

	// A known finding, in German.
	var d events.Diagnosis
	if got := e.inLanguage(http.MethodPost, "/api/v1/topics/outlook/diagnosis", "de-CH, en;q=0.5", `{"device": "PC-OUTLOOK-OFFLINE"}`, &d); got != "de" {
		t.Errorf("diagnosis: Content-Language %q, want de", got)
	}
	if len(d.Findings) != 1 || d.Findings[0].Title != "Outlook arbeitet offline" {
		t.Errorf("findings: got %+v, want Outlook arbeitet offline", d.Findings)
	}
	titles := map[string]string{}
	for _, r := range d.Remediations {
		titles[r.ID] = r.Title
	}
	if titles["set_outlook_online"] != "Outlook wieder online schalten" || titles["repair_outlook_ost_problem"] != "Outlook-OST-Datei reparieren" {
		t.Errorf("remediations: got %v, want German titles", titles)
	}

	// Random fleet devices of both tenants and platforms.
	ctx := context.Background()
	for i, tenant := range []string{"eu", "us"} {
		for j, platform := range []string{"Windows", "macOS"} {
			devs, err := nxsim.NewControlClient(e.sim.TenantURL(tenant), nil).SampleDevices(ctx,
				nxsim.Sample{N: 2, Seed: uint64(31 + 2*i + j), Platform: platform, Presence: "online"})
			if err != nil || len(devs) == 0 {
				t.Fatalf("sample %s %s: %v %v", tenant, platform, devs, err)
			}
			for k, dev := range devs {
				loc := []string{"de", "fr"}[(i+j+k)%2]
				checkDiagnosisIn(t, e, cat, "l1_device_checklist", dev.Name, loc)
				if platform == "Windows" {
					checkDiagnosisIn(t, e, cat, "slow_pc", dev.Name, loc)
				}
			}
		}
	}
}

// checkDiagnosisIn diagnoses a topic on a device in loc: every rule, finding and
// remediation has the topic file's text in loc, which differs from the English one.
func checkDiagnosisIn(t *testing.T, e *env, cat *topic.Catalog, topicID, device, loc string) {
	t.Helper()
	top, _ := cat.Get(topicID)
	var d events.Diagnosis
	if got := e.inLanguage(http.MethodPost, "/api/v1/topics/"+topicID+"/diagnosis", loc, `{"device": "`+device+`"}`, &d); got != loc {
		t.Errorf("%s on %s: Content-Language %q, want %q", topicID, device, got, loc)
	}
	english := map[string]string{}
	for _, r := range top.Rules {
		english[r.ID] = r.Title
	}
	for _, r := range d.Rules {
		if want := top.RuleTitleIn(loc, r.Rule, english[r.Rule]); r.Title != want || want == english[r.Rule] {
			t.Errorf("%s on %s (%s): rule %s title %q, want %q", topicID, device, loc, r.Rule, r.Title, want)
		}
	}
	for _, f := range d.Findings {
		if want := top.RuleTitleIn(loc, f.Rule, english[f.Rule]); f.Title != want {
			t.Errorf("%s on %s (%s): finding %s title %q, want %q", topicID, device, loc, f.Rule, f.Title, want)
		}
	}
	for _, r := range d.Remediations {
		def, _ := top.Remediation(r.ID)
		title, message := top.RemediationIn(loc, r.ID, def.Title, def.Message)
		if r.Title != title || r.Message != message || title == def.Title {
			t.Errorf("%s on %s (%s): remediation %s %q / %q, want %q / %q", topicID, device, loc, r.ID, r.Title, r.Message, title, message)
		}
	}
	if len(d.Rules) == 0 {
		t.Errorf("%s on %s: no rules", topicID, device)
	}
}
