package events

import "time"

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
	CloseMessage string     `json:"close_message,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ClosedAt     *time.Time `json:"closed_at"`
	AckedAt      *time.Time `json:"acked_at"`
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
