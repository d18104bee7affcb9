package events

import (
	"cmp"
	"slices"
	"time"

	"github.com/dexbridge/dexbridge/internal/locale"
)

// Type token of a proactive event's change, as callbacks, server-sent events and
// NATS carry it.
const TypeProactiveEventChanged = "dexbridge.proactive.v1.event_changed"

// What happened to a proactive event.
const (
	ProactiveOpened = "opened"
	ProactiveClosed = "closed"
)

// What a proactive event found out before it was recorded; its message is chosen
// from it, so the employee is never promised what dexbridge cannot do.
const (
	// AssessFixAvailable: the diagnosis confirmed the problem and a ready remediation
	// addressing it can run on the device.
	AssessFixAvailable = "fix_available"
	// AssessProblemConfirmed: the diagnosis confirmed the problem, but nothing
	// dexbridge can run fixes it; IT follows up.
	AssessProblemConfirmed = "problem_confirmed"
	// AssessNotChecked: the device could not be checked (the diagnosis failed or was
	// inconclusive, or the device is unknown).
	AssessNotChecked = "not_checked"
	// AssessHealthy: the diagnosis found nothing wrong; by default not sent.
	AssessHealthy = "healthy"
	// AssessReported: the monitor has no topic to check; the alert as Nexthink
	// reported it.
	AssessReported = "reported"
)

// ProactiveEventChanged tells a chatbot that a proactive conversation should start
// (kind opened) or that its alert recovered (kind closed). Its id is the delivery's:
// a callback keeps the same id across retries, so a chatbot can drop repeats.
type ProactiveEventChanged struct {
	Header
	Kind  string         `json:"kind"`
	Event ProactiveEvent `json:"event"`
}

// ProactiveEvent is a proactive conversation to open with an employee: who, on which
// device, about which alert, what the diagnosis found and what can fix it, and the
// message to start with.
type ProactiveEvent struct {
	ID string `json:"id"`
	// Cursor is the event's position in the feed: pass it as after= (or Last-Event-ID)
	// to read what changed since. A closed event moves to a later position.
	Cursor    string             `json:"cursor"`
	Status    string             `json:"status"` // open or closed
	Source    string             `json:"source"`
	WebhookID string             `json:"webhook_id"`
	Monitor   string             `json:"monitor"`
	Topic     string             `json:"topic,omitempty"`
	Employee  *ProactiveEmployee `json:"employee"`
	Device    *ProactiveDevice   `json:"device"`
	Alert     ProactiveAlert     `json:"alert"`
	// Diagnosis is the topic's diagnosis run before the event was recorded; null when
	// the monitor has no topic or no diagnosis ran.
	Diagnosis *ProactiveDiagnosis `json:"diagnosis"`
	// Assessment is what the event found out (AssessFixAvailable, ...); the message
	// and the remediations follow from it.
	Assessment string `json:"assessment,omitempty"`
	// Remediations are those of the diagnosis's suggestions the message may offer:
	// ready, able to run on the device, and named by the monitor's rule when it names
	// any. Remote actions only when the assessment is fix_available.
	Remediations []SuggestedRemedy `json:"remediations"`
	// Message is the text to open the conversation with, or, once the alert
	// recovered, the recovery message.
	Message string `json:"message"`
	// CloseMessage is the recovery message, once the alert recovered (also in Message).
	CloseMessage string `json:"close_message,omitempty"`
	// Locale is the language of the employee-facing texts (the messages, the titles
	// of findings and remediations): the reader's, once In picked it.
	Locale string `json:"locale,omitempty"`
	// Texts are those texts in every locale the event was rendered in, by locale;
	// In picks a reader's and drops the rest, so answers carry one language.
	Texts     map[string]ProactiveTexts `json:"texts,omitempty"`
	CreatedAt time.Time                 `json:"created_at"`
	UpdatedAt time.Time                 `json:"updated_at"`
	ClosedAt  *time.Time                `json:"closed_at"`
	AckedAt   *time.Time                `json:"acked_at"`
}

// ProactiveEmployee is the employee to talk to.
type ProactiveEmployee struct {
	Name string `json:"name"`
	UPN  string `json:"upn,omitempty"`
}

// ProactiveDevice is the device the alert is about.
type ProactiveDevice struct {
	Name         string `json:"name"`
	CollectorUID string `json:"collector_uid,omitempty"`
	Instance     string `json:"instance,omitempty"`
	Platform     string `json:"platform,omitempty"`
}

// ProactiveAlert is the alert as the webhook reported it.
type ProactiveAlert struct {
	Status       string     `json:"status"` // open or closed
	TriggerTime  *time.Time `json:"trigger_time,omitempty"`
	RecoveryTime *time.Time `json:"recovery_time,omitempty"`
	Context      any        `json:"context,omitempty"`
	Priority     string     `json:"priority,omitempty"`
}

// ProactiveDiagnosis is a topic's diagnosis of the device.
type ProactiveDiagnosis struct {
	Topic    string     `json:"topic"`
	Source   string     `json:"source,omitempty"` // cache, live or mixed
	DataAsOf *time.Time `json:"data_as_of,omitempty"`
	// Verdict is problems_found, healthy or inconclusive, over the rules the
	// monitor's alert concerns; absent when the diagnosis could not run.
	Verdict  string             `json:"verdict,omitempty"`
	Findings []ProactiveFinding `json:"findings"`
	// Rules are every rule's outcome (found, clear or not_evaluated and why).
	Rules []RuleResult `json:"rules,omitempty"`
	// Remediations are every remediation the diagnosis suggested, as it suggested them.
	Remediations []SuggestedRemedy `json:"remediations"`
	// Error says why the diagnosis could not run.
	Error string `json:"error,omitempty"`
}

// ProactiveFinding is a rule of the topic that matched.
type ProactiveFinding struct {
	Rule     string         `json:"rule"`
	Title    string         `json:"title"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// ProactiveTexts are a proactive event's employee-facing texts in one locale, as the
// webhooks worker rendered them.
type ProactiveTexts struct {
	Message      string `json:"message"`
	CloseMessage string `json:"close_message,omitempty"`
	// Rules are the titles of the diagnosis's rules (and so of its findings), by id.
	Rules map[string]string `json:"rules,omitempty"`
	// Remediations are the titles and messages of the remediations, by id.
	Remediations map[string]RemedyText `json:"remediations,omitempty"`
}

// RemedyText is a remediation's title, and its message for the employee, in one
// locale.
type RemedyText struct {
	Title   string `json:"title"`
	Message string `json:"message,omitempty"`
}

// Messages are the event's messages by locale (the recovery message once it is
// closed): what locale.Pick chooses from for a reader.
func (e ProactiveEvent) Messages() map[string]string {
	out := map[string]string{locale.Default: e.Message}
	for loc, t := range e.Texts {
		m := t.Message
		if e.Status == ProactiveClosed {
			m = t.CloseMessage
		}
		if m != "" {
			out[loc] = m
		}
	}
	return out
}

// In is the event with its employee-facing texts in the supported locale that fits
// tag best (a subscription's locale, a negotiated Accept-Language): its message,
// close message, and the titles and messages of its findings, rules and
// remediations, without Texts. A text not rendered in that locale stays in English,
// as do all of an event recorded before events had texts per locale. e is not
// changed, so one event can be put into several readers' locales.
func (e ProactiveEvent) In(tag string) ProactiveEvent {
	loc := locale.Match(tag)
	t, ok := e.Texts[loc]
	e.Texts = nil
	if !ok {
		e.Locale = locale.Default
		return e
	}
	e.Locale = loc
	e.CloseMessage = cmp.Or(t.CloseMessage, e.CloseMessage)
	if e.Status == ProactiveClosed {
		e.Message = cmp.Or(t.CloseMessage, e.Message)
	} else {
		e.Message = cmp.Or(t.Message, e.Message)
	}
	remedies := func(rs []SuggestedRemedy) []SuggestedRemedy {
		rs = slices.Clone(rs)
		for i := range rs {
			rt := t.Remediations[rs[i].ID]
			rs[i].Title = cmp.Or(rt.Title, rs[i].Title)
			if rs[i].Message != "" {
				rs[i].Message = cmp.Or(rt.Message, rs[i].Message)
			}
		}
		return rs
	}
	e.Remediations = remedies(e.Remediations)
	if e.Diagnosis != nil {
		d := *e.Diagnosis
		d.Findings = slices.Clone(d.Findings)
		for i := range d.Findings {
			d.Findings[i].Title = cmp.Or(t.Rules[d.Findings[i].Rule], d.Findings[i].Title)
		}
		d.Rules = slices.Clone(d.Rules)
		for i := range d.Rules {
			d.Rules[i].Title = cmp.Or(t.Rules[d.Rules[i].Rule], d.Rules[i].Title)
		}
		d.Remediations = remedies(d.Remediations)
		e.Diagnosis = &d
	}
	return e
}
