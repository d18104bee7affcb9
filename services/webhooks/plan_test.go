package webhooks_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

func TestTargets(t *testing.T) {
	dev := &webhooks.Device{Name: "PC-1", CollectorUID: "c1", Instance: "eu"}
	users := []webhooks.Employee{{Name: "amy", UPN: "amy@x"}, {Name: "bob"}, {Name: "cal"}}
	emp := &webhooks.Employee{Name: "dan", UPN: "dan@x"}
	devs := []webhooks.Device{{Name: "PC-DAN-NEW"}, {Name: "PC-DAN-OLD"}}
	tests := []struct {
		name       string
		a          webhookmap.Alert
		max        int
		dev        *webhooks.Device
		devUsers   []webhooks.Employee
		emp        *webhooks.Employee
		empDevices []webhooks.Device
		want       string
	}{
		{"device alone: most recent user", webhookmap.Alert{Device: "PC-1"}, 1, dev, users, nil, nil, "[amy/amy@x@PC-1/c1]"},
		{"device alone: two most recent", webhookmap.Alert{Device: "PC-1"}, 2, dev, users, nil, nil, "[amy/amy@x@PC-1/c1 bob/@PC-1/c1]"},
		{"device nobody used", webhookmap.Alert{Device: "PC-1"}, 1, dev, nil, nil, nil, "[-@PC-1/c1 (nobody used device PC-1 recently)]"},
		{"unknown device", webhookmap.Alert{Device: "PC-X"}, 1, nil, nil, nil, nil, "[-@PC-X/ (device PC-X is not in the cache)]"},
		{"unknown device, known user", webhookmap.Alert{Device: "PC-X", User: "dan"}, 1, nil, nil, emp, devs, "[dan/@PC-X/ (device PC-X is not in the cache)]"},
		{"named user on the device, UPN from the device's users", webhookmap.Alert{Device: "PC-1", User: "BOB"}, 1, dev, users, nil, nil, "[bob/@PC-1/c1]"},
		{"named user matched by UPN", webhookmap.Alert{Device: "PC-1", User: "amy@x"}, 1, dev, users, nil, nil, "[amy/amy@x@PC-1/c1]"},
		{"named user not among the device's users", webhookmap.Alert{Device: "PC-1", User: "zed@x"}, 1, dev, users, nil, nil, "[zed@x/zed@x@PC-1/c1]"},
		{"user alone: latest device", webhookmap.Alert{User: "dan"}, 1, nil, nil, emp, devs, "[dan/dan@x@PC-DAN-NEW/]"},
		{"user alone without a device", webhookmap.Alert{User: "dan"}, 1, nil, nil, emp, nil, "[dan/dan@x@-]"},
		{"unknown user alone", webhookmap.Alert{User: "eve"}, 1, nil, nil, nil, nil, "[eve/@- (user eve is not in the cache)]"},
	}
	for _, tt := range tests {
		got := webhooks.Targets(tt.a, tt.max, tt.dev, tt.devUsers, tt.emp, tt.empDevices)
		var desc []string
		for _, g := range got {
			s := "-"
			if g.Employee != nil {
				s = g.Employee.Name + "/" + g.Employee.UPN
			}
			if g.Device != nil {
				s += "@" + g.Device.Name + "/" + g.Device.CollectorUID
			} else {
				s += "@-"
			}
			if g.Unresolved != "" {
				s += " (" + g.Unresolved + ")"
			}
			desc = append(desc, s)
		}
		if fmt.Sprint(desc) != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, desc, tt.want)
		}
	}
}

// offersFix is whether a message offers to run a fix: the shipped rules' fix
// messages and the built-in one ask "shall I", and no other message does.
func offersFix(message string) bool { return strings.Contains(strings.ToLower(message), "shall i") }

// TestMessagesFollowTheContent builds the events of shipped monitors for every kind
// of diagnosis outcome, and checks that the assessment, the message and the
// remediations say the same thing: a fix is offered exactly when a ready remote action
// addressing what was found can run on the device, and then it is in remediations.
func TestMessagesFollowTheContent(t *testing.T) {
	rules, err := webhookmap.Parse([]byte(testRules(t)), func(k string) string { return testSecrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	actions, err := allowlist.LoadFile(filepath.Join(testenv.RepoRoot(t), "config", "remote_actions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runs := webhooks.RunsOn(actions)
	cat, err := topic.LoadDir(filepath.Join(testenv.RepoRoot(t), "topics"))
	if err != nil {
		t.Fatal(err)
	}
	win := &webhooks.Device{Name: "EU-000112", CollectorUID: "c-112", Instance: "eu", Platform: "Windows"}
	mac := &webhooks.Device{Name: "EU-000928", CollectorUID: "c-928", Instance: "eu", Platform: "macOS"}
	amy := &webhooks.Employee{Name: "amy", UPN: "amy@example.com"}

	rule := func(id, status string) events.RuleResult {
		return events.RuleResult{Rule: id, Title: id, Status: status}
	}
	found := func(id, title string) events.Finding { return events.Finding{Rule: id, Title: title} }
	cleanup := events.SuggestedRemedy{ID: "disk_cleanup", Title: "Disk cleanup", RemoteAction: "#disk_cleanup", Ready: true, Rules: []string{"low_disk_space"}}
	office := events.SuggestedRemedy{ID: "repair_office_365", Title: "Repair Office 365", RemoteAction: "#repair_office_365", Ready: true, Rules: []string{"office_outdated"}}
	online := events.SuggestedRemedy{ID: "set_outlook_online", Title: "Set Outlook online", RemoteAction: "#set_outlook_online", Ready: true, Rules: []string{"outlook_offline"}}
	plugins := events.SuggestedRemedy{ID: "set_outlook_plugins", Title: "Set Outlook plugins", RemoteAction: "#set_outlook_plugins",
		Ready: false, NotReady: "PluginNames: CrashedPluginList is null", Rules: []string{"outlook_plugin_crashed"}}
	restart := events.SuggestedRemedy{ID: "restart_device", Title: "Restart the device", Message: "Please restart.", Ready: true, Rules: []string{"restart_overdue"}}
	ost := events.SuggestedRemedy{ID: "repair_outlook_ost_problem", Title: "Repair Outlook OST Problem", RemoteAction: "#repair_outlook_ost_problem", Ready: true, Generic: true}
	slowPC := func(status map[string]string, findings []events.Finding, rems ...events.SuggestedRemedy) *webhooks.Checked {
		d := &events.Diagnosis{Topic: "slow_pc", Findings: findings, Remediations: rems}
		for _, id := range []string{"restart_overdue", "low_disk_space", "high_impact_startup_apps", "slow_group_policy", "office_outdated"} {
			d.Rules = append(d.Rules, rule(id, status[id]))
		}
		return &webhooks.Checked{Diagnosis: d}
	}
	outlook := func(status map[string]string, findings []events.Finding, rems ...events.SuggestedRemedy) *webhooks.Checked {
		d := &events.Diagnosis{Topic: "outlook", Findings: findings, Remediations: rems}
		for _, id := range []string{"outlook_offline", "outlook_plugin_crashed", "restart_overdue", "office_outdated"} {
			d.Rules = append(d.Rules, rule(id, status[id]))
		}
		return &webhooks.Checked{Diagnosis: d}
	}
	allClear := func(except map[string]string) map[string]string {
		m := map[string]string{}
		for _, id := range []string{"restart_overdue", "low_disk_space", "high_impact_startup_apps", "slow_group_policy", "office_outdated",
			"outlook_offline", "outlook_plugin_crashed"} {
			m[id] = "clear"
		}
		for k, v := range except {
			m[k] = v
		}
		return m
	}

	tests := []struct {
		name      string
		source    string // default nexthink
		monitor   string
		target    webhooks.Target
		checked   *webhooks.Checked
		status    string // the event's status as held ("" when it goes out)
		kind      string
		rems      []string // remediation ids in the event
		message   string   // what the message starts with
		detail    string   // part of the detail
		diagError string
	}{
		{name: "fix available", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: win},
			checked: slowPC(allClear(map[string]string{"low_disk_space": "found"}), []events.Finding{found("low_disk_space", "The system drive is nearly full")}, cleanup),
			kind:    events.AssessFixAvailable, rems: []string{"disk_cleanup"},
			message: "Hi amy, the system drive of EU-000112 is almost full, which will slow it down and can stop updates. Shall I run a disk cleanup for you?",
			detail:  "fix available: Disk cleanup"},
		{name: "fix available with advice and a generic one", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: outlook(allClear(map[string]string{"outlook_offline": "found", "restart_overdue": "found"}),
				[]events.Finding{found("outlook_offline", "Outlook is working offline"), found("restart_overdue", "Not restarted")}, online, restart, ost),
			kind: events.AssessFixAvailable, rems: []string{"set_outlook_online", "restart_device", "repair_outlook_ost_problem"},
			message: "Hi amy, Outlook has been crashing on EU-000112. I checked the device and found: Outlook is working offline; Not restarted. " +
				"I can fix this for you now (Set Outlook online): shall I?"},
		{name: "platform mismatch: the fix does not run on macOS", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: mac},
			checked: slowPC(allClear(map[string]string{"low_disk_space": "found"}), []events.Finding{found("low_disk_space", "The system drive is nearly full")}, cleanup),
			kind:    events.AssessProblemConfirmed, rems: []string{},
			message: "Hi amy, Nexthink reported Low disk space on EU-000928. I checked the device and found: The system drive is nearly full. I cannot fix this from here; IT will follow up with you.",
			detail:  "disk_cleanup does not run on macOS devices"},
		{name: "platform mismatch: the topic does not apply", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: mac},
			checked: &webhooks.Checked{Error: "the slow_pc topic applies to Windows devices; EU-000928 runs macOS"},
			kind:    events.AssessNotChecked, rems: []string{}, diagError: "the slow_pc topic applies to Windows devices",
			message: "Hi amy, Nexthink reported Low disk space on EU-000928. I could not check the device right now; IT will follow up with you."},
		{name: "diagnosis error", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: &webhooks.Checked{Error: "the diagnosis failed"},
			kind:    events.AssessNotChecked, rems: []string{}, diagError: "the diagnosis failed", detail: "the diagnosis failed",
			message: "Hi amy, Nexthink reported Outlook crashes on EU-000112. I could not check the device right now"},
		{name: "healthy: held", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: win},
			checked: slowPC(allClear(nil), nil), status: store.ProactiveHealthy,
			kind: events.AssessHealthy, rems: []string{}, detail: "found nothing wrong",
			message: "Hi amy, Nexthink reported Low disk space on EU-000112, but I checked the device and found nothing wrong."},
		{name: "healthy for this alert: another rule's problem is not its own", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: win},
			checked: slowPC(allClear(map[string]string{"office_outdated": "found"}), []events.Finding{found("office_outdated", "Office is out of date")}, office),
			status:  store.ProactiveHealthy, kind: events.AssessHealthy, rems: []string{}},
		{name: "healthy, notified", source: "ops", monitor: "Quiet check", target: webhooks.Target{Employee: amy, Device: win},
			checked: slowPC(allClear(nil), nil), kind: events.AssessHealthy, rems: []string{},
			message: "All good on EU-000112"},
		{name: "healthy but a generic remediation is ready", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: outlook(allClear(nil), nil, ost), status: store.ProactiveHealthy, kind: events.AssessHealthy, rems: []string{}},
		{name: "all clear on stale data: inconclusive", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: win},
			checked: func() *webhooks.Checked {
				c := slowPC(allClear(nil), nil)
				c.Diagnosis.Stale = true
				c.Diagnosis.VerdictReasons = []events.VerdictReason{{Code: events.ReasonStaleData, Message: "the data is 3 days old"}}
				return c
			}(),
			kind: events.AssessNotChecked, rems: []string{}, detail: "inconclusive: the data is 3 days old",
			message: "Hi amy, Nexthink reported Low disk space on EU-000112. I could not check the device right now"},
		{name: "inconclusive", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: outlook(allClear(map[string]string{"outlook_plugin_crashed": "not_evaluated"}), nil, ost),
			kind:    events.AssessNotChecked, rems: []string{}, detail: "inconclusive: outlook_plugin_crashed not_evaluated",
			message: "Hi amy, Nexthink reported Outlook crashes on EU-000112. I could not check the device right now"},
		{name: "problem confirmed, its fix not ready, a generic one is", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: outlook(allClear(map[string]string{"outlook_plugin_crashed": "found"}), []events.Finding{found("outlook_plugin_crashed", "An Outlook add-in crashed")}, plugins, ost),
			kind:    events.AssessProblemConfirmed, rems: []string{}, detail: "set_outlook_plugins is not ready",
			message: "Hi amy, Nexthink reported Outlook crashes on EU-000112. I checked the device and found: An Outlook add-in crashed. I cannot fix this from here"},
		{name: "problem confirmed with advice only", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			checked: outlook(allClear(map[string]string{"restart_overdue": "found"}), []events.Finding{found("restart_overdue", "Not restarted")}, restart, ost),
			kind:    events.AssessProblemConfirmed, rems: []string{"restart_device"}},
		{name: "the monitor's rule does not offer that fix", monitor: "Low disk space", target: webhooks.Target{Employee: amy, Device: win},
			checked: slowPC(allClear(map[string]string{"low_disk_space": "found"}), []events.Finding{found("low_disk_space", "The system drive is nearly full")},
				events.SuggestedRemedy{ID: "format_disk", Title: "Format", RemoteAction: "#disk_cleanup", Ready: true, Rules: []string{"low_disk_space"}}),
			kind: events.AssessProblemConfirmed, rems: []string{}},
		{name: "unresolved device: held", monitor: "Outlook crashes",
			target: webhooks.Target{Employee: &webhooks.Employee{Name: "ghost"}, Device: &webhooks.Device{Name: "EU-001499"}, Unresolved: "device EU-001499 is not in the cache"},
			status: store.ProactiveUnresolved, kind: events.AssessNotChecked, rems: []string{}, detail: "not in the cache",
			message: "Hi ghost, Nexthink reported Outlook crashes on EU-001499. I could not check the device right now"},
		{name: "no diagnosis ran", monitor: "Outlook crashes", target: webhooks.Target{Employee: amy, Device: win},
			kind: events.AssessNotChecked, rems: []string{}, detail: "no device to diagnose"},
		{name: "no topic", source: "ops", monitor: "Printer on fire", target: webhooks.Target{Employee: amy, Device: win},
			kind: events.AssessReported, rems: []string{}, message: "Hi amy, Nexthink reported Printer on fire on EU-000112."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := rules.Source(cmp.Or(tt.source, "nexthink"))
			a, err := src.Map([]byte(fmt.Sprintf(`{"monitor":%q,"device":"x"}`, tt.monitor)))
			if err != nil || a.Rule == nil {
				t.Fatalf("got %+v %v, want a monitor with a rule", a, err)
			}
			checked := map[string]webhooks.Checked{}
			if tt.checked != nil {
				checked[tt.target.Device.Name] = *tt.checked
			}
			evs := webhooks.OpenEvents(src, a, []webhooks.Target{tt.target}, checked, runs, cat)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			ev := evs[0]
			var rems []events.SuggestedRemedy
			if err := json.Unmarshal(ev.Remediations, &rems); err != nil || rems == nil {
				t.Fatalf("remediations: got %s (%v), want an array", ev.Remediations, err)
			}
			var ids []string
			hasFix := false
			for _, r := range rems {
				ids = append(ids, r.ID)
				if !r.Ready {
					t.Errorf("remediation %s is not ready, yet offered", r.ID)
				}
				if ok, why := runs(r, tt.target.Device.Platform); !ok {
					t.Errorf("remediation %s %s, yet offered", r.ID, why)
				}
				hasFix = hasFix || r.RemoteAction != ""
			}
			if ev.Hold != tt.status || ev.Assessment != tt.kind || strings.Join(ids, ",") != strings.Join(tt.rems, ",") {
				t.Errorf("got held %q assessment %s remediations %v, want %q %s %v", ev.Hold, ev.Assessment, ids, tt.status, tt.kind, tt.rems)
			}
			// The message and the remediations agree.
			if fix := tt.kind == events.AssessFixAvailable; offersFix(ev.Message) != fix || hasFix != fix {
				t.Errorf("message %q offers a fix: %v; a remote action offered: %v; want both %v", ev.Message, offersFix(ev.Message), hasFix, fix)
			}
			if !strings.HasPrefix(ev.Message, tt.message) {
				t.Errorf("message: got %q, want %q...", ev.Message, tt.message)
			}
			if !strings.Contains(ev.Detail, tt.detail) {
				t.Errorf("detail: got %q, want it to say %q", ev.Detail, tt.detail)
			}
			var d *events.ProactiveDiagnosis
			_ = json.Unmarshal(ev.Diagnosis, &d)
			checkTexts(t, ev, d, cat)
			switch {
			case tt.checked == nil && d != nil:
				t.Errorf("diagnosis: got %+v, want none", d)
			case tt.diagError != "" && (d == nil || !strings.Contains(d.Error, tt.diagError) || d.Verdict != ""):
				t.Errorf("diagnosis: got %+v, want the error %q and no verdict", d, tt.diagError)
			case tt.checked != nil && tt.checked.Diagnosis != nil && (d == nil || d.Verdict == "" || len(d.Rules) == 0 || d.Remediations == nil):
				t.Errorf("diagnosis: got %+v, want its verdict, rules and remediations", d)
			}
		})
	}
}

// offers are how the shipped messages offer a fix, by locale.
var offers = map[string]string{"en": "shall i", "de": "soll ich", "fr": "voulez-vous que je"}

// checkTexts checks an event's texts in every locale: each message is in its
// language, offers a fix exactly when the English one does, and the titles of the
// diagnosis's rules and remediations are the topic's translations.
func checkTexts(t *testing.T, ev store.NewProactiveEvent, d *events.ProactiveDiagnosis, cat *topic.Catalog) {
	t.Helper()
	var texts map[string]events.ProactiveTexts
	if err := json.Unmarshal(ev.Texts, &texts); err != nil || len(texts) != 3 {
		t.Fatalf("texts: got %s (%v), want en, de and fr", ev.Texts, err)
	}
	if texts["en"].Message != ev.Message {
		t.Errorf("texts.en: got %q, want the message %q", texts["en"].Message, ev.Message)
	}
	top, _ := cat.Get(ev.Topic)
	for loc, greeting := range map[string]string{"de": "Hallo ", "fr": "Bonjour "} {
		m := texts[loc].Message
		// The shipped texts greet; a test monitor's English-only text stays English.
		if strings.HasPrefix(ev.Message, "Hi ") != strings.HasPrefix(m, greeting) || (m == ev.Message) != !strings.HasPrefix(ev.Message, "Hi ") {
			t.Errorf("%s message: got %q, want it in %s", loc, m, loc)
		}
		if got, want := strings.Contains(strings.ToLower(m), offers[loc]), offersFix(ev.Message); got != want {
			t.Errorf("%s message %q offers a fix: %v; the English one: %v", loc, m, got, want)
		}
		if d == nil || top == nil {
			continue
		}
		for _, r := range d.Rules {
			def := ""
			for _, tr := range top.Rules {
				if tr.ID == r.Rule {
					def = tr.Title
				}
			}
			if got, want := texts[loc].Rules[r.Rule], top.RuleTitleIn(loc, r.Rule, r.Title); def != "" && (got != want || got == def) {
				t.Errorf("%s rule %s: got %q, want %q", loc, r.Rule, got, want)
			}
		}
		for _, f := range d.Findings {
			// A message naming the problem found names it in its language.
			if got := texts[loc].Rules[f.Rule]; strings.Contains(ev.Message, f.Title) && (got == "" || !strings.Contains(m, got)) {
				t.Errorf("%s: finding %s is %q, which the message %q does not name", loc, f.Rule, got, m)
			}
		}
		for _, r := range d.Remediations {
			if def, ok := top.Remediation(r.ID); ok {
				if want, _ := top.RemediationIn(loc, r.ID, def.Title, def.Message); texts[loc].Remediations[r.ID].Title != want {
					t.Errorf("%s remediation %s: got %q, want %q", loc, r.ID, texts[loc].Remediations[r.ID].Title, want)
				}
			}
		}
	}
}
