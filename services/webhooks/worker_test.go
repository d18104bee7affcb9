package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

// TestKilledWorkerLosesNothing accepts webhooks while no worker runs, then starts one
// and kills it right after one webhook's commit and before its ack (its connection
// dies, as in a crash), then starts another: every accepted webhook is processed
// exactly once in effect.
func TestKilledWorkerLosesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	const n = 12
	var ids []string
	for i := range n {
		monitor := []string{"Outlook crashes", "OneDrive not running", "Slow PC", "Low disk space"}[i%4]
		device := fmt.Sprintf("PC-%02d", i)
		a := e.nexthink(t, alert(monitor, "open", device, fmt.Sprintf("user%02d", i), "2026-01-02 03:04:05"), nil)
		if a.status != 202 {
			t.Fatalf("got %d, want 202", a.status)
		}
		ids = append(ids, a.body["id"].(string))
	}

	var killed atomic.Bool
	var first *worker
	ready := make(chan struct{})
	first = e.startWorker(t, func(o *webhooks.Options) {
		o.Concurrency = 1
		webhooks.SetAfterCommit(o, func(ev events.WebhookReceived) {
			if ev.ID == ids[4] && killed.CompareAndSwap(false, true) {
				<-ready
				first.nc.Close() // the ack of this committed webhook is never sent
			}
		})
	})
	close(ready)
	waitFor(t, "the first worker to die after a commit", killed.Load)
	first.stop()
	processed := len(e.deliveries(t))
	if processed == 0 || processed == n {
		t.Fatalf("the first worker processed %d of %d: want it killed midway", processed, n)
	}

	e.startWorker(t, nil)
	waitFor(t, "every webhook processed", func() bool { return len(e.deliveries(t)) == n })
	waitFor(t, "the stream drained (the killed webhook redelivered and acked)", func() bool {
		s, _ := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamWebhooks))
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
	got := map[string]int{}
	for _, d := range e.deliveries(t) {
		got[d.WebhookID]++
		// Their devices are not in the cache: each is recorded, unresolved.
		if d.Outcome != store.WebhookUnresolved {
			t.Errorf("webhook %s: got outcome %s (%s), want unresolved", d.WebhookID, d.Outcome, d.Detail)
		}
	}
	events := map[string]int{}
	for _, ev := range e.events(t) {
		events[ev.WebhookID]++
	}
	for _, id := range ids {
		if got[id] != 1 || events[id] != 1 {
			t.Errorf("webhook %s: got %d records and %d events, want 1 and 1", id, got[id], events[id])
		}
	}
	if !strings.Contains(e.logs.String(), `"outcome":"duplicate"`) {
		t.Error("the killed webhook's redelivery was not seen as a duplicate")
	}
}

// failingResolver fails every lookup, like a database that is down.
type failingResolver struct{ calls atomic.Int32 }

func (f *failingResolver) UsersOfDevice(context.Context, string, string) (*webhooks.Device, []webhooks.Employee, error) {
	f.calls.Add(1)
	return nil, nil, errors.New("cache unavailable")
}

func (f *failingResolver) DevicesOfUser(context.Context, string, string) (*webhooks.Employee, []webhooks.Device, error) {
	f.calls.Add(1)
	return nil, nil, errors.New("cache unavailable")
}

// TestPoisonWebhooksAreRecordedNotRetriedForever: a webhook whose processing keeps
// failing is recorded as failed after MaxDeliveries and terminated; a payload the
// rules cannot map is refused with 422 and recorded as invalid, and one that the
// worker's rules cannot map (they changed since it was accepted) is recorded as
// invalid at once; an unknown monitor is ignored.
func TestPoisonWebhooksAreRecordedNotRetriedForever(t *testing.T) {
	e := newEnv(t, envOptions{duplicateWindow: 300 * time.Millisecond})
	res := &failingResolver{}
	// The worker's rules read the monitor elsewhere than the receiver's.
	moved, err := webhookmap.Parse([]byte(strings.Replace(testRules(t), "      monitor: monitor\n", "      monitor: alert_name\n", 1)),
		func(k string) string { return testSecrets[k] })
	if err != nil {
		t.Fatal(err)
	}
	failing := e.startWorker(t, func(o *webhooks.Options) { o.Resolver = res; o.MaxDeliveries = 3 })
	bad := e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "", ""), nil)
	refused := e.nexthink(t, `{"status":"open","device":"PC-1"}`, nil)
	if refused.status != 422 || refused.body["code"] != "unprocessable" || refused.body["field"] != "monitor" {
		t.Errorf("unmappable payload: got %d %v, want 422 naming the monitor", refused.status, refused.body)
	}
	unknown := e.nexthink(t, alert("Printer on fire", "open", "PC-PRINTER", "", ""), nil)
	waitFor(t, "three records", func() bool { return len(e.deliveries(t)) == 3 })
	if got := res.calls.Load(); got != 3 {
		t.Errorf("resolver called %d times, want 3 (one per delivery, then terminated)", got)
	}
	cons, err := e.js.Consumer(context.Background(), e.subjects.Stream(events.StreamWebhooks), webhooks.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer: got %+v (%v), want nothing pending", info, err)
	}
	failing.stop()
	changed := e.startWorker(t, func(o *webhooks.Options) { o.Rules = webhookmap.Static(moved) })
	invalid := e.nexthink(t, alert("Slow PC", "open", "PC-SLOW", "", ""), nil)
	waitFor(t, "four records", func() bool { return len(e.deliveries(t)) == 4 })
	changed.stop()
	refusedID := events.WebhookID(events.WebhookDedupeKey("nexthink", "", []byte(`{"status":"open","device":"PC-1"}`)))
	want := map[string]struct {
		outcome    string
		deliveries int
		detail     string
	}{
		bad.body["id"].(string):     {store.WebhookFailed, 3, "cache unavailable"},
		refusedID:                   {store.WebhookInvalid, 1, `refused with 422: payload field monitor: no monitor name at "monitor"`},
		invalid.body["id"].(string): {store.WebhookInvalid, 1, `no monitor name at "alert_name"`},
		unknown.body["id"].(string): {store.WebhookIgnored, 1, "no rule"},
	}
	for _, d := range e.deliveries(t) {
		w := want[d.WebhookID]
		if d.Outcome != w.outcome || d.Deliveries != w.deliveries || !strings.Contains(d.Detail, w.detail) {
			t.Errorf("%s: got %s after %d deliveries (%q), want %s after %d (%q)", d.WebhookID, d.Outcome, d.Deliveries, d.Detail, w.outcome, w.deliveries, w.detail)
		}
	}
	if len(e.events(t)) != 0 {
		t.Errorf("got %d events, want none", len(e.events(t)))
	}

	// The sender delivering the failed webhook again (after JetStream's window, which
	// drops it as the same message) gets another chance. The window is counted by the
	// server's own timer, so the sender tries until it has passed.
	e.startWorker(t, nil)
	waitFor(t, "the failed webhook sent again taken as new", func() bool {
		again := e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "", ""), nil)
		return again.status == 202 && again.body["duplicate"] == false
	})
	waitFor(t, "the failed webhook processed on its new delivery", func() bool {
		for _, d := range e.deliveries(t) {
			if d.WebhookID == bad.body["id"] && d.Outcome == store.WebhookUnresolved {
				return true
			}
		}
		return false
	})
}

// TestTargetsAndMessages: who is told of an alert, and what. This worker has no
// Diagnoser, so no device is checked and no fix is offered.
func TestTargetsAndMessages(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	e.startWorker(t, nil)
	tests := []struct {
		name    string
		send    func() answer
		want    []string // status:user@device
		message string   // start of the first event's message
		detail  string   // part of the first event's detail
	}{
		{"device and user", func() answer {
			return e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", ""), nil)
		}, []string{"open:hjordan@PC-OUTLOOK-PLUGIN"}, "Hi hjordan, Nexthink reported Outlook crashes on PC-OUTLOOK-PLUGIN. I could not check the device", "no device to diagnose"},
		{"device alone: its most recent user", func() answer {
			return e.nexthink(t, alert("Low disk space", "open", "PC-SHARED", "", ""), nil)
		}, []string{"open:bwayne@PC-SHARED"}, "Hi bwayne, Nexthink reported Low disk space on PC-SHARED. I could not check", ""},
		{"user alone: their latest device; the built-in text where the source has none", func() answer {
			return e.send(t, req{source: "itsm", bearer: itsmToken, body: `{"alert":{"name":"Slow PC","state":"open"},"upn":"pparker@example.com"}`})
		}, []string{"open:pparker@PC-ONEDRIVE"}, "Hi pparker, Nexthink reported Slow PC on PC-ONEDRIVE. I could not check", ""},
		{"device nobody used: recorded, not sent", func() answer {
			return e.nexthink(t, alert("OneDrive not running", "open", "PC-NOBODY", "", ""), nil)
		}, []string{"unresolved:@PC-NOBODY"}, "Hi there, Nexthink reported OneDrive not running on PC-NOBODY.", "nobody used device PC-NOBODY recently"},
		{"unknown device: recorded, not sent", func() answer {
			return e.nexthink(t, alert("OneDrive not running", "open", "PC-UNKNOWN", "zed", ""), nil)
		}, []string{"unresolved:zed@PC-UNKNOWN"}, "Hi zed", "device PC-UNKNOWN is not in the cache"},
		{"unknown user alone: recorded, not sent", func() answer {
			return e.send(t, req{source: "itsm", bearer: itsmToken, body: `{"alert":{"name":"Slow PC","state":"open"},"upn":"nobody@example.com"}`})
		}, []string{"unresolved:nobody@example.com@"}, "Hi nobody@example.com, Nexthink reported Slow PC on your device.", "user nobody@example.com is not in the cache"},
		{"a monitor without topic", func() answer {
			return e.send(t, req{source: "ops", bearer: itsmToken, body: `{"monitor":"Printer on fire","device":"PC-ONEDRIVE"}`})
		}, []string{"open:pparker@PC-ONEDRIVE"}, "Hi pparker, Nexthink reported Printer on fire on PC-ONEDRIVE.", "no topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.send()
			if a.status != 202 {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			var got []store.ProactiveEvent
			waitFor(t, "the events", func() bool {
				got = nil
				for _, ev := range e.events(t) {
					if ev.WebhookID == a.body["id"] {
						got = append(got, ev)
					}
				}
				return len(got) > 0
			})
			var desc []string
			for _, ev := range got {
				desc = append(desc, ev.Status+":"+ev.UserName+"@"+ev.DeviceName)
			}
			if fmt.Sprint(desc) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", desc, tt.want)
			}
			if !strings.HasPrefix(got[0].Message, tt.message) || offersFix(got[0].Message) || string(got[0].Remediations) != "[]" {
				t.Errorf("message: got %q with remediations %s, want %q... and nothing offered", got[0].Message, got[0].Remediations, tt.message)
			}
			if !strings.Contains(got[0].Detail, tt.detail) {
				t.Errorf("detail: got %q, want it to say %q", got[0].Detail, tt.detail)
			}
		})
	}
	for _, ev := range e.events(t) {
		if ev.Monitor == "Low disk space" && (ev.CollectorUID != theFleet[3].uid || ev.Instance != "eu" || ev.Platform != "Windows" || ev.Topic != "slow_pc") {
			t.Errorf("device details from the cache: got %q %q %q %q", ev.CollectorUID, ev.Instance, ev.Platform, ev.Topic)
		}
	}
}

// TestSuppressionAndRecovery: the same employee is not pinged twice for a monitor
// within the window; a recovery closes the open event instead of opening one.
func TestSuppressionAndRecovery(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	e.startWorker(t, nil)
	step := func(name string, a answer) []store.ProactiveEvent {
		t.Helper()
		if a.status != 202 {
			t.Fatalf("%s: got %d %v", name, a.status, a.body)
		}
		waitFor(t, name, func() bool {
			for _, d := range e.deliveries(t) {
				if d.WebhookID == a.body["id"] {
					return true
				}
			}
			return false
		})
		return e.events(t)
	}
	statuses := func(evs []store.ProactiveEvent) string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Monitor+"/"+ev.UserName+"="+ev.Status)
		}
		return strings.Join(out, ", ")
	}
	quick := func(status, trigger string) answer {
		return e.send(t, req{source: "quick", bearer: itsmToken,
			body: fmt.Sprintf(`{"monitor":"Slow PC","device":"PC-LOW-DISK","user":"asmith","status":%q,"at":%q}`, status, trigger)})
	}
	nx := func(monitor, status, trigger string) answer {
		return e.nexthink(t, alert(monitor, status, "PC-OUTLOOK-PLUGIN", "hjordan", trigger), nil)
	}
	evs := step("first alert", nx("Outlook crashes", "open", "2026-01-02 03:00:00"))
	if got, want := statuses(evs), "Outlook crashes/hjordan=open"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	openCursor := *evs[0].FeedSeq
	evs = step("same monitor again", nx("Outlook crashes", "open", "2026-01-02 03:30:00"))
	if got, want := statuses(evs), "Outlook crashes/hjordan=open, Outlook crashes/hjordan=suppressed"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if evs[1].SuppressedBy != evs[0].ID || evs[1].FeedSeq != nil {
		t.Errorf("suppressed event: got suppressed_by %q feed %v, want %q and no feed position", evs[1].SuppressedBy, evs[1].FeedSeq, evs[0].ID)
	}
	evs = step("another monitor", nx("OneDrive not running", "open", "2026-01-02 03:40:00"))
	if got, want := statuses(evs), "Outlook crashes/hjordan=open, Outlook crashes/hjordan=suppressed, OneDrive not running/hjordan=open"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	evs = step("recovery", nx("Outlook crashes", "closed", "2026-01-02 03:00:00"))
	if got, want := statuses(evs), "Outlook crashes/hjordan=closed, Outlook crashes/hjordan=suppressed, OneDrive not running/hjordan=open"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if c := evs[0]; c.ClosedAt == nil || *c.FeedSeq <= openCursor || c.CloseMessage != "Outlook is stable again on PC-OUTLOOK-PLUGIN." {
		t.Errorf("closed event: got closed_at %v cursor %d (was %d) message %q", c.ClosedAt, *c.FeedSeq, openCursor, c.CloseMessage)
	}
	// The alert block says it recovered; without a recovery time in the payload, the
	// time the recovery arrived.
	var closedAlert events.ProactiveAlert
	if err := json.Unmarshal(evs[0].Alert, &closedAlert); err != nil || closedAlert.Status != "closed" || closedAlert.RecoveryTime == nil ||
		closedAlert.RecoveryTime.Before(evs[0].CreatedAt.Add(-time.Second)) || closedAlert.TriggerTime == nil {
		t.Errorf("closed alert: got %s (%v), want status closed with a recovery time and the trigger time kept", evs[0].Alert, err)
	}
	evs = step("recovery again closes nothing", nx("Outlook crashes", "closed", "2026-01-02 03:01:00"))
	if len(evs) != 3 {
		t.Errorf("got %d events, want 3", len(evs))
	}

	// A short window: after it, the employee is told again.
	step("quick first", quick("open", "1"))
	evs = step("quick within the window", quick("open", "2"))
	if got := statuses(evs[3:]); got != "Slow PC/asmith=open, Slow PC/asmith=suppressed" {
		t.Fatalf("got %s", got)
	}
	time.Sleep(1600 * time.Millisecond)
	evs = step("quick after the window", quick("open", "3"))
	if got := statuses(evs[3:]); got != "Slow PC/asmith=open, Slow PC/asmith=suppressed, Slow PC/asmith=open" {
		t.Fatalf("got %s", got)
	}
}

// fixedDiagnoser is a Diagnoser that finds the Outlook plug-in crash on any device.
type fixedDiagnoser struct {
	mu      sync.Mutex
	devices []webhooks.Device
	fail    bool
}

func (f *fixedDiagnoser) Diagnose(_ context.Context, topic string, d webhooks.Device) (*events.Diagnosis, error) {
	f.mu.Lock()
	f.devices = append(f.devices, d)
	f.mu.Unlock()
	if f.fail {
		return nil, errors.New("topics service unavailable: dial tcp 10.0.0.1")
	}
	rem := events.SuggestedRemedy{ID: "set_outlook_plugins", Title: "Set Outlook plugins", RemoteAction: "#set_outlook_plugins",
		Params: map[string]string{"PluginNames": "Grammarly"}, Ready: true, Rules: []string{"outlook_plugin_crashed"}}
	return &events.Diagnosis{Topic: topic, Source: "live",
		Findings:     []events.Finding{{Rule: "outlook_plugin_crashed", Title: "An Outlook add-in crashed"}},
		Rules:        []events.RuleResult{{Rule: "outlook_plugin_crashed", Status: "found"}, {Rule: "outlook_offline", Status: "clear"}},
		Remediations: []events.SuggestedRemedy{rem}}, nil
}

func TestEventsCarryTheDiagnosis(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("diagnosis fails %v", fail), func(t *testing.T) {
			e := newEnv(t, envOptions{})
			loadCache(t, e.pool, theFleet...)
			diag := &fixedDiagnoser{fail: fail}
			e.startWorker(t, func(o *webhooks.Options) { o.Diagnoser = diag })
			a := e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", ""), nil)
			waitFor(t, "the event", func() bool { return len(e.events(t)) == 1 })
			ev := e.events(t)[0]
			var d events.ProactiveDiagnosis
			if err := json.Unmarshal(ev.Diagnosis, &d); err != nil || d.Topic != "outlook" {
				t.Fatalf("diagnosis: got %s (%v)", ev.Diagnosis, err)
			}
			if len(diag.devices) != 1 || diag.devices[0].CollectorUID != theFleet[0].uid {
				t.Errorf("diagnosed %+v, want PC-OUTLOOK-PLUGIN with its collector uid", diag.devices)
			}
			var rems []events.SuggestedRemedy
			_ = json.Unmarshal(ev.Remediations, &rems)
			if fail {
				if d.Error != "the diagnosis failed" || len(rems) != 0 || ev.Assessment != events.AssessNotChecked || offersFix(ev.Message) {
					t.Errorf("failed diagnosis: got error %q remediations %v assessment %s message %q, want a safe error, none, not checked",
						d.Error, rems, ev.Assessment, ev.Message)
				}
			} else if len(d.Findings) != 1 || d.Verdict != "problems_found" || len(rems) != 1 || rems[0].Params["PluginNames"] != "Grammarly" ||
				!rems[0].Ready || ev.Assessment != events.AssessFixAvailable || !offersFix(ev.Message) {
				t.Errorf("got findings %v verdict %s remediations %+v assessment %s message %q, want the diagnosis's fix offered",
					d.Findings, d.Verdict, rems, ev.Assessment, ev.Message)
			}
			_ = a
		})
	}
}

// TestSecretsAreNeverLogged runs accepted and refused webhooks of every kind of
// source with debug logs, and greps the logs for the secrets.
func TestSecretsAreNeverLogged(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	e.startWorker(t, nil)
	e.nexthink(t, `{"monitor":"Outlook crashes","device":"PC-OUTLOOK-PLUGIN","user":"hjordan","context":"payload-marker-91c2"}`, nil)
	e.send(t, req{body: `{}`, basic: &[2]string{"nexthink", "wrong-" + nexthinkPassword}})
	e.send(t, req{source: "itsm", bearer: itsmToken, body: `{"alert":{"name":"Slow PC"},"upn":"pparker@example.com"}`})
	e.send(t, req{source: "itsm", bearer: "x" + itsmToken, body: `{}`})
	e.send(t, req{source: "signed", body: `{"monitor":"Slow PC","device":"PC-1"}`, header: map[string]string{"X-Dexbridge-Signature": "t=1,v1=" + signingSecret}})
	waitFor(t, "both processed", func() bool { return len(e.deliveries(t)) == 2 })
	logs := e.logs.String()
	for _, s := range []string{nexthinkPassword, itsmToken, signingSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold the secret %q", s)
		}
	}
	// Payloads are not logged at info level either.
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"level":"INFO"`) && strings.Contains(line, "payload-marker-91c2") {
			t.Errorf("a payload at info level: %s", line)
		}
	}
	if !strings.Contains(logs, `"msg":"webhook accepted"`) || !strings.Contains(logs, `"msg":"proactive events recorded"`) {
		t.Error("the logs lack the accepted and recorded lines: the test would prove nothing")
	}
}

// TestHostilePayloadsAreStored: valid JSON that PostgreSQL would choke on (NUL
// escapes, which jsonb and text refuse) or that is merely odd is processed, never
// left failing.
func TestHostilePayloadsAreStored(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.startWorker(t, nil)
	deep := strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200)
	payloads := []string{
		`{"monitor":"Slow PC","device":"PC-NUL","user":"u\u0000ser","context":"{\"x\":\"a\\u0000b\"}"}`,
		`{"monitor":"Slow\u0000PC","device":"PC-NUL2","context":{"nul":"\u0000"}}`,
		`{"monitor":"Slow PC","device":"PC-DEEP","context":` + deep + `}`,
		`{"monitor":"Slow PC","device":"` + strings.Repeat("D", 5000) + `","user":"` + strings.Repeat("é", 3000) + `"}`,
		`{"monitor":"Printer\u0000 jam","device":"PC-1","extra":"\u0000"}`,
		`{"device":"PC-NUL3","note":"\u0000"}`,
	}
	for i, p := range payloads {
		want := 202
		if i == len(payloads)-1 {
			want = 422 // no monitor: refused, and recorded as invalid
		}
		if a := e.nexthink(t, p, nil); a.status != want {
			t.Fatalf("%.60s: got %d %v, want %d", p, a.status, a.body, want)
		}
	}
	waitFor(t, "every payload recorded", func() bool { return len(e.deliveries(t)) == len(payloads) })
	for _, d := range e.deliveries(t) {
		if d.Outcome == store.WebhookFailed || d.Deliveries != 1 {
			t.Errorf("%s: got %s after %d deliveries (%s), want it dealt with at once", d.WebhookID, d.Outcome, d.Deliveries, d.Detail)
		}
	}
}
