package webhookmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/topic"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var secrets = env(map[string]string{"WEBHOOK_NEXTHINK_PASSWORD": "pw-0123456789"})

func shipped(t testing.TB) *Rules {
	t.Helper()
	r, err := Load("../../config/webhooks.yaml", secrets)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShippedRulesMatchTheTopics(t *testing.T) {
	r := shipped(t)
	if err := r.CheckTopics(shippedTopics(t)); err != nil {
		t.Fatal(err)
	}
	s, ok := r.Source("nexthink")
	if !ok || s.Disabled != "" {
		t.Fatalf("nexthink source: got %v (disabled %q), want enabled", ok, s.Disabled)
	}
	// The seeds' alerts, as nxsim names its monitors.
	for monitor, want := range map[string]string{
		"Outlook crashes": "outlook", "OneDrive not running": "onedrive", "Slow PC": "slow_pc", "Low disk space": "slow_pc",
		"low DISK space ": "slow_pc",
	} {
		m := s.Monitor(monitor)
		if m == nil || m.Topic != want {
			t.Errorf("monitor %q: got %+v, want topic %s", monitor, m, want)
		}
	}
	if m := s.Monitor("Low disk space"); !slices.Equal(m.Remediations, []string{"disk_cleanup"}) || !slices.Equal(m.Rules, []string{"low_disk_space"}) ||
		!m.Concerns("low_disk_space") || m.Concerns("office_outdated") || !m.Offers("disk_cleanup") || m.Offers("repair_office_365") {
		t.Errorf("low disk space: got rules %v remediations %v, want [low_disk_space] and [disk_cleanup]", m.Rules, m.Remediations)
	}
	if m := s.Monitor("Outlook crashes"); !m.Concerns("office_outdated") || !m.Offers("repair_office_365") || m.NotifyHealthy {
		t.Errorf("outlook crashes: got %+v, want every rule and remediation, healthy events not sent", m)
	}
	if got := s.SuppressionWindow(s.Monitor("Low disk space")); got != 24*time.Hour {
		t.Errorf("low disk space window: got %v, want 24h", got)
	}
	if got := s.SuppressionWindow(s.Monitor("Slow PC")); got != 4*time.Hour {
		t.Errorf("slow pc window: got %v, want the file's 4h", got)
	}
}

func TestMissingSecretDisablesTheSource(t *testing.T) {
	r, err := Load("../../config/webhooks.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Source("nexthink")
	if !strings.Contains(s.Disabled, "WEBHOOK_NEXTHINK_PASSWORD") {
		t.Errorf("got disabled %q, want it to name WEBHOOK_NEXTHINK_PASSWORD", s.Disabled)
	}
}

func TestSecretsFromFile(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds.yaml")
	if err := os.WriteFile(creds, []byte("token: tok-from-file\nsigning_secret: sig-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `sources:
  - name: itsm
    auth: {type: bearer}
    signature: {tolerance: 1m}
    credentials_file: ` + creds + `
    fields: {monitor: m, device: d}
`
	r, err := Parse([]byte(doc), env(map[string]string{"WEBHOOK_ITSM_TOKEN": "tok-from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Source("itsm")
	if s.Auth.Token.Reveal() != "tok-from-env" || s.Signature.Secret.Reveal() != "sig-from-file" || s.Disabled != "" {
		t.Errorf("got token %q secret %q disabled %q, want the variable first, then the file", s.Auth.Token.Reveal(), s.Signature.Secret.Reveal(), s.Disabled)
	}
	if s.Signature.Header != "X-Dexbridge-Signature" || s.Signature.Tolerance != time.Minute {
		t.Errorf("signature: got %+v", s.Signature)
	}
}

func TestBadFilesAreRefusedWithFileAndPath(t *testing.T) {
	base := "sources:\n  - name: nx\n    auth: {type: basic, username: u}\n    fields: {monitor: m, device: d}\n"
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", "sources:\n  - name: nx\n    auth: {type: basic, username: u}\n    fields: {monitor: m, device: d}\n    colour: red\n", []string{"sources[0]", "colour"}},
		{"unknown field key", "sources:\n  - name: nx\n    auth: {type: basic, username: u}\n    fields: {monitor: m, devise: d}\n", []string{"sources[0].fields", "devise"}},
		{"wrong type", "sources:\n  - name: nx\n    auth: {type: basic, username: u}\n    fields: {monitor: m, device: d}\n    max_users_per_device: many\n", []string{"sources[0].max_users_per_device"}},
		{"bad window", "suppression_window: soon\n" + base, []string{"suppression_window"}},
		{"bad auth type", "sources:\n  - name: nx\n    auth: {type: magic}\n    fields: {monitor: m, device: d}\n", []string{"sources[0].auth.type"}},
		{"none without signature", "sources:\n  - name: nx\n    auth: {type: none}\n    fields: {monitor: m, device: d}\n", []string{"sources[0].auth.type", "signature"}},
		{"basic without user", "sources:\n  - name: nx\n    auth: {type: basic}\n    fields: {monitor: m, device: d}\n", []string{"sources[0].auth.username"}},
		{"nobody concerned", "sources:\n  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m}\n", []string{"sources[0].fields", "device or user"}},
		{"bad placeholder", base + "    message: Hi {{employee}}\n", []string{"sources[0].message", "{{employee}}"}},
		{"bad monitor placeholder", base + "    monitors:\n      - {name: X, message: \"{{device}} {{colour}}\"}\n", []string{"sources[0].monitors[0].message", "{{colour}}"}},
		{"duplicate monitor", base + "    monitors:\n      - {name: X}\n      - {name: x}\n", []string{"sources[0].monitors[1].name", "duplicate"}},
		{"duplicate source", base + "  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n", []string{"sources[1].name", "duplicate"}},
		{"bad zone", base + "    time_zone: Mars/Olympus\n", []string{"sources[0].time_zone"}},
		{"status both ways", base + "    status_values: {open: [up], closed: [UP]}\n", []string{"sources[0].status_values"}},
		{"bad source name", "sources:\n  - name: Nexthink!\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n", []string{"sources[0].name"}},
		{"no sources", "suppression_window: 1h\n", []string{"sources"}},
		{"remediations without topic", base + "    monitors:\n      - {name: X, remediations: [disk_cleanup]}\n", []string{"sources[0].monitors[0].remediations"}},
		{"rules without topic", base + "    monitors:\n      - {name: X, rules: [low_disk_space]}\n", []string{"sources[0].monitors[0].rules"}},
		{"bad message key", base + "    messages: {fixed: hi}\n", []string{"sources[0].messages", "fixed"}},
		{"bad situation placeholder", base + "    monitors:\n      - {name: X, messages: {not_checked: \"{{finding}}\"}}\n", []string{"sources[0].monitors[0].messages.not_checked", "{{finding}}"}},
		{"older and newer name", base + "    message: a\n    messages: {fix_available: b}\n", []string{"sources[0].message", "not both"}},
		{"reserved source name", "sources:\n  - name: deliveries\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n", []string{"sources[0].name", "reserved"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "webhooks.yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, secrets)
			if err == nil {
				t.Fatalf("got no error, want one naming %v", tt.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path+": ") {
					t.Errorf("line %q does not start with the file", line)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestCheckTopicsRefusesUnknownTopicsAndRemediations(t *testing.T) {
	doc := "sources:\n  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m, device: d}\n    monitors:\n" +
		"      - {name: A, topic: nope}\n      - {name: B, topic: slow_pc, remediations: [format_disk]}\n" +
		"      - {name: C, topic: slow_pc, rules: [disk_on_fire]}\n"
	r, err := Parse([]byte(doc), secrets)
	if err != nil {
		t.Fatal(err)
	}
	err = r.CheckTopics(shippedTopics(t))
	for _, w := range []string{`no topic "nope"`, `no remediation "format_disk"`, `no rule "disk_on_fire"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want it to mention %s", err, w)
		}
	}
}

// TestCheckInstances: a source is bound to a configured instance; a source bound to
// none is refused when several instances are configured, since tenants share user
// names and it could not tell whose employee an alert means.
func TestCheckInstances(t *testing.T) {
	doc := "sources:\n  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n"
	bound := "sources:\n  - name: nx\n    instance: eu\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n"
	tests := []struct {
		name       string
		doc        string
		configured []string
		want       []string // "" for accepted
	}{
		{"unbound, one instance", doc, []string{"eu"}, nil},
		{"unbound, no instance", doc, nil, nil},
		{"unbound, two instances", doc, []string{"eu", "us"}, []string{"sources[0].instance", `source "nx" is bound to no instance`, "eu, us"}},
		{"bound, two instances", bound, []string{"eu", "us"}, nil},
		{"bound to one not configured", bound, []string{"us"}, []string{"sources[0].instance", `instance "eu", which is not configured`}},
	}
	for _, tt := range tests {
		r, err := Parse([]byte(tt.doc), secrets)
		if err != nil {
			t.Fatal(err)
		}
		err = r.CheckInstances(tt.configured)
		if (err == nil) != (tt.want == nil) {
			t.Errorf("%s: got %v, want refused: %v", tt.name, err, tt.want != nil)
		}
		for _, w := range tt.want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %q, want it to mention %q", tt.name, err, w)
			}
		}
	}
	if s, _ := shipped(t).Source("nexthink"); s.Instance != "eu" {
		t.Errorf("shipped nexthink source: bound to %q, want eu", s.Instance)
	}
	if _, err := Parse([]byte(strings.Replace(bound, "instance: eu", "instance: EU!", 1)), secrets); err == nil {
		t.Error("a malformed instance name: got it accepted")
	}
}

func ptime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestMap(t *testing.T) {
	s, _ := shipped(t).Source("nexthink")
	custom, err := Parse([]byte(`sources:
  - name: itsm
    auth: {type: bearer}
    fields: {monitor: alert.monitor.name, status: alert.status, user: who.upn, trigger_time: at, context: alert.context}
    status_values: {open: [RAISED], closed: [CLEARED]}
    time_zone: Europe/Zurich
`), secrets)
	if err != nil {
		t.Fatal(err)
	}
	itsm, _ := custom.Source("itsm")
	tests := []struct {
		name    string
		src     *Source
		payload string
		want    Alert
		topic   string
		invalid string // the Invalid field, "-" for the whole payload
	}{
		{name: "nexthink open", src: s,
			payload: `{"monitor":"Outlook crashes","status":"open","device":"PC-OUTLOOK-PLUGIN","user":"hjordan","trigger_time":"2026-01-02 03:04:05","recovery_time":"","context":"{\"crashes\": 4}","priority":"high"}`,
			want: Alert{Monitor: "Outlook crashes", Status: Open, Device: "PC-OUTLOOK-PLUGIN", User: "hjordan",
				TriggerTime: ptime("2026-01-02T03:04:05Z"), Context: map[string]any{"crashes": 4.0}, Priority: "high"},
			topic: "outlook"},
		{name: "nexthink closed", src: s, payload: `{"monitor":"Low disk space","status":"closed","device":"PC-LOW-DISK","recovery_time":"2026-01-02T05:00:00+01:00"}`,
			want: Alert{Monitor: "Low disk space", Status: Closed, Device: "PC-LOW-DISK", RecoveryTime: ptime("2026-01-02T04:00:00Z")}, topic: "slow_pc"},
		{name: "status words", src: s, payload: `{"monitor":"Slow PC","status":"RECOVERED","device":"PC-GPO"}`,
			want: Alert{Monitor: "Slow PC", Status: Closed, Device: "PC-GPO"}, topic: "slow_pc"},
		{name: "no status is open", src: s, payload: `{"monitor":"Slow PC","device":"PC-GPO","trigger_time":1767322800}`,
			want: Alert{Monitor: "Slow PC", Status: Open, Device: "PC-GPO", TriggerTime: ptime("2026-01-02T03:00:00Z")}, topic: "slow_pc"},
		{name: "unknown monitor maps without rule", src: s, payload: `{"monitor":"Printer jammed","device":"PC-PRINTER"}`,
			want: Alert{Monitor: "Printer jammed", Status: Open, Device: "PC-PRINTER"}},
		{name: "numbers become text", src: s, payload: `{"monitor":42,"device":7}`,
			want: Alert{Monitor: "42", Status: Open, Device: "7"}},
		{name: "nested and dotted keys", src: itsm,
			payload: `{"alert.monitor.name":"Disk","alert":{"status":"cleared","context":{"x":[1]}},"who":{"upn":"asmith@example.com"},"at":"2026-07-01 12:00:00"}`,
			want: Alert{Monitor: "Disk", Status: Closed, User: "asmith@example.com", TriggerTime: ptime("2026-07-01T10:00:00Z"),
				Context: map[string]any{"x": []any{1.0}}}},
		{name: "unreadable time is dropped", src: s, payload: `{"monitor":"Slow PC","device":"PC-GPO","trigger_time":"yesterday"}`,
			want: Alert{Monitor: "Slow PC", Status: Open, Device: "PC-GPO"}, topic: "slow_pc"},
		{name: "no monitor", src: s, payload: `{"device":"PC-GPO"}`, invalid: "monitor"},
		{name: "empty monitor", src: s, payload: `{"monitor":"  ","device":"PC-GPO"}`, invalid: "monitor"},
		{name: "monitor object", src: s, payload: `{"monitor":{"name":"x"},"device":"PC-GPO"}`, invalid: "monitor"},
		{name: "unknown status", src: s, payload: `{"monitor":"Slow PC","status":"maybe","device":"PC-GPO"}`, invalid: "status"},
		{name: "nobody", src: s, payload: `{"monitor":"Slow PC"}`, invalid: "device"},
		{name: "device array", src: s, payload: `{"monitor":"Slow PC","device":["a"]}`, invalid: "device"},
		{name: "not an object", src: s, payload: `["monitor"]`, invalid: "-"},
		{name: "two values", src: s, payload: `{"monitor":"a","device":"b"} {}`, invalid: "-"},
		{name: "null", src: s, payload: `null`, invalid: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.Map([]byte(tt.payload))
			var inv *Invalid
			if tt.invalid != "" {
				if !errors.As(err, &inv) {
					t.Fatalf("got %v, want an Invalid error", err)
				}
				if want := strings.TrimPrefix(tt.invalid, "-"); inv.Field != want {
					t.Errorf("got field %q, want %q (%v)", inv.Field, want, err)
				}
				// A field's error names where the payload should hold it.
				if inv.Field != "" && (inv.Path == "" || !strings.Contains(err.Error(), strconv.Quote(inv.Path))) {
					t.Errorf("got path %q in %q, want the payload's path named", inv.Path, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotTopic := ""
			if got.Rule != nil {
				gotTopic = got.Rule.Topic
			}
			if gotTopic != tt.topic {
				t.Errorf("topic: got %q, want %q", gotTopic, tt.topic)
			}
			got.Rule = nil
			if g, w := dump(got), dump(tt.want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func dump(a Alert) string {
	b, _ := json.Marshal(a)
	return string(b)
}

func TestTemplates(t *testing.T) {
	s, _ := shipped(t).Source("nexthink")
	a, err := s.Map([]byte(`{"monitor":"Outlook crashes","device":"PC-OUTLOOK-PLUGIN","user":"hjordan"}`))
	if err != nil {
		t.Fatal(err)
	}
	vars := a.Vars("hjordan", "", "PC-OUTLOOK-PLUGIN")
	vars["findings"], vars["fix"] = "An Outlook add-in crashed", "Set Outlook plugins"
	got := a.Rule.Messages.FixAvailable.Render(vars)
	if want := "Hi hjordan, Outlook has been crashing on PC-OUTLOOK-PLUGIN. I checked the device and found: An Outlook add-in crashed. " +
		"I can fix this for you now (Set Outlook plugins): shall I?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// What the monitor does not set comes from the built-in texts.
	if got := a.Rule.Messages.NotChecked.Render(vars); !strings.HasPrefix(got, "Hi hjordan, Nexthink reported Outlook crashes on PC-OUTLOOK-PLUGIN. I could not check") {
		t.Errorf("not checked: got %q", got)
	}
	if got := a.Rule.Messages.Recovery.Render(vars); got != "Outlook is stable again on PC-OUTLOOK-PLUGIN." {
		t.Errorf("recovery: got %q", got)
	}
	a, _ = s.Map([]byte(`{"monitor":"Something new","user":"amy"}`))
	if a.Rule != nil {
		t.Fatalf("unknown monitor has a rule: %+v", a.Rule)
	}
	if got := s.Messages.Reported.Render(a.Vars("", "", "")); got != "Hi there, Nexthink reported Something new on your device." {
		t.Errorf("source message: got %q", got)
	}
	tpl, err := ParseTemplate("{{ user }}/{{user_upn}}/{{device}}/{{monitor}}/{{topic}}/{{context}}/{{priority}}/{{trigger_time}}")
	if err != nil {
		t.Fatal(err)
	}
	tt := ptime("2026-01-02T03:04:05Z")
	got = tpl.Render(Alert{Monitor: "M", Rule: &Monitor{Topic: "outlook"}, Context: map[string]any{"a": 1}, Priority: "p", TriggerTime: tt}.Vars("u", "u@x", "D"))
	if want := `u/u@x/D/M/outlook/{"a":1}/p/2026-01-02T03:04:05Z`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLiveKeepsThePreviousGoodRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "webhooks.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := "sources:\n  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m, device: d}\n"
	write(good)
	var logs bytes.Buffer
	log, _ := logging.New(&logs, "info")
	l, err := OpenLive(path, env(map[string]string{"WEBHOOK_NX_TOKEN": "t"}), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	l.now = func() time.Time { return clock }
	l.SetInterval(time.Second)

	write("sources:\n  - name: nx\n    auth: {type: bearer}\n    fields: {monitor: m, device: d}\n    colour: red\n")
	clock = clock.Add(2 * time.Second)
	if _, ok := l.Current().Source("nx"); !ok {
		t.Fatal("bad file replaced the good rules")
	}
	if !strings.Contains(logs.String(), "webhook rules refused") || !strings.Contains(logs.String(), "colour") {
		t.Errorf("refusal not logged with its reason: %s", logs.String())
	}
	write(good + "  - name: other\n    auth: {type: bearer}\n    fields: {monitor: m, user: u}\n")
	if _, ok := l.Current().Source("other"); ok {
		t.Error("reloaded before the interval")
	}
	clock = clock.Add(2 * time.Second)
	if _, ok := l.Current().Source("other"); !ok {
		t.Error("good change not loaded")
	}
	if _, err := OpenLive(filepath.Join(dir, "missing.yaml"), env(nil), nil, log); err == nil {
		t.Error("a missing file at start: got no error")
	}
}

// FuzzMap feeds arbitrary payloads to the shipped nexthink mapping: it never panics,
// and whatever it accepts is a well-formed alert.
func FuzzMap(f *testing.F) {
	s, _ := shipped(f).Source("nexthink")
	for _, seed := range []string{
		`{"monitor":"Outlook crashes","status":"open","device":"PC-OUTLOOK-PLUGIN","user":"hjordan","trigger_time":"2026-01-02 03:04:05","context":"{\"a\":1}"}`,
		`{"monitor":"Low disk space","status":"closed","device":"PC-LOW-DISK","recovery_time":1767322800123}`,
		`{"monitor":1e400,"device":true}`, `{"monitor":"x","user":"\u0000"}`, `[]`, `{`, `{"monitor":"a","device":"b","trigger_time":-1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := s.Map(payload)
		if err != nil {
			var inv *Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("got %T %v, want *Invalid", err, err)
			}
			return
		}
		if a.Monitor == "" || (a.Status != Open && a.Status != Closed) || (a.Device == "" && a.User == "") {
			t.Fatalf("accepted a malformed alert %+v from %q", a, payload)
		}
		if len(a.Monitor) > maxValue || len(a.Device) > maxValue || len(a.User) > maxValue {
			t.Fatalf("value longer than %d bytes", maxValue)
		}
		if a.Rule != nil {
			_ = a.Rule.Messages.FixAvailable.Render(a.Vars(a.User, "", a.Device))
		}
	})
}

// shippedTopics is the repository's topic catalogue.
func shippedTopics(t *testing.T) *topic.Catalog {
	t.Helper()
	set, err := topic.FilesIn("../..").Load()
	if err != nil {
		t.Fatal(err)
	}
	return set.Catalog()
}

func TestMessagesInEveryLocale(t *testing.T) {
	r := shipped(t)
	for _, loc := range []string{"de", "fr"} {
		if missing := r.MissingTranslations(loc); len(missing) > 0 {
			t.Errorf("config/webhooks.yaml: no %s translation of %s", loc, strings.Join(missing, ", "))
		}
	}
	b := BuiltinMessages()
	for _, n := range b.named() {
		for _, loc := range []string{"de", "fr"} {
			if n.text.In(loc) == n.text.Template {
				t.Errorf("built-in %s message has no %s translation", n.key, loc)
			}
		}
	}
	s, _ := r.Source("nexthink")
	m := s.Monitor("Outlook crashes")
	vars := Alert{Monitor: "Outlook crashes", Rule: m}.VarsIn("de", "", "", "")
	if got, want := m.Messages.Recovery.In("de").Render(vars), "Outlook läuft auf Ihrem Gerät wieder stabil."; got != want {
		t.Errorf("de recovery: got %q, want %q", got, want)
	}
	if got, want := m.Messages.NotChecked.In("fr").Render(Alert{Monitor: "Outlook crashes", Rule: m}.VarsIn("fr", "", "", "")), "Bonjour à vous, Nexthink a signalé « Outlook crashes » sur votre appareil."; !strings.HasPrefix(got, want) {
		t.Errorf("fr not_checked (built-in): got %q, want it to start %q", got, want)
	}
	if got := m.Messages.Recovery.In("ja").Render(vars); got != "Outlook is stable again on Ihrem Gerät." {
		t.Errorf("an unsupported locale falls back to the English text: got %q", got)
	}
}

func TestBadTranslatedMessagesAreRefused(t *testing.T) {
	base := `sources:
  - name: s
    auth: {type: bearer}
    fields: {monitor: m, status: s, device: d}
    messages:
      recovery: Solved.
`
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown locale":  {base + "      xx:\n        recovery: X.\n", `line 7: sources[0].messages.xx: unsupported locale "xx"`},
		"a region":        {base + "      fr-CA:\n        recovery: X.\n", `line 7: sources[0].messages.fr-CA: unsupported locale "fr-CA" (did you mean "fr"?)`},
		"english":         {base + "      en:\n        recovery: X.\n", `line 7: sources[0].messages.en: "en" is the base language`},
		"no english text": {base + "      de:\n        healthy: Alles gut.\n", "sources[0].messages.de.healthy: a translation of a text this level does not set"},
		"bad placeholder": {base + "      de:\n        recovery: Gelöst {{nope}}.\n", "sources[0].messages.de.recovery: unknown placeholder {{nope}}"},
		"unknown key":     {base + "      de:\n        recovered: X.\n", "recovered"},
		"monitor locale": {base + "    monitors:\n      - name: M\n        messages:\n          recovery: Ok.\n          it: {recovery: Risolto.}\n",
			`line 11: sources[0].monitors[0].messages.it: unsupported locale "it"`},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "webhooks.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, env(map[string]string{"WEBHOOK_S_TOKEN": "tok-0123456789abcdef"}))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("got %v, want an error naming the file with %q", err, tc.want)
			}
		})
	}
}

func TestMissingTranslationsOfAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	doc := `sources:
  - name: s
    auth: {type: bearer}
    fields: {monitor: m, status: s, device: d}
    messages:
      recovery: Solved.
      de: {recovery: Gelöst.}
    monitors:
      - name: M
        messages:
          fix_available: Shall I?
          fr: {fix_available: "Je le fais ?"}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Load(path, env(map[string]string{"WEBHOOK_S_TOKEN": "tok-0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]string{
		"de": "sources[0].monitors[0].messages.de.fix_available",
		"fr": "sources[0].messages.fr.recovery",
	} {
		if got := strings.Join(r.MissingTranslations(loc), ","); got != want {
			t.Errorf("%s: got %q, want %q", loc, got, want)
		}
	}
}

// FuzzParse: any rules document loads or is refused, never a panic (the lines of
// the messages' locale keys are read from the YAML nodes).
func FuzzParse(f *testing.F) {
	if raw, err := os.ReadFile("../../config/webhooks.yaml"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("sources:\n  - name: s\n    auth: {type: bearer}\n    fields: {device: d}\n    messages:\n      recovery: R\n      xx: {recovery: X}\n"))
	f.Add([]byte("sources: [{messages: [de]}]\n"))
	f.Add([]byte("sources:\n  - monitors: {messages: 1}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Parse(raw, env(map[string]string{"WEBHOOK_S_TOKEN": "tok-0123456789abcdef"}))
		if err == nil {
			_ = r.MissingTranslations("de")
		}
	})
}
