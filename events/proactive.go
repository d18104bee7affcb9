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
	// Remediations are the diagnosis's suggestions, or, without a diagnosis, those the
	// mapping rules name for the monitor.
	Remediations []ProactiveRemediation `json:"remediations"`
	Message      string                 `json:"message"`
	// CloseMessage is the recovery message, once the alert recovered.
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
	Topic        string                 `json:"topic"`
	Source       string                 `json:"source,omitempty"` // cache, live or mixed
	DataAsOf     *time.Time             `json:"data_as_of,omitempty"`
	Findings     []ProactiveFinding     `json:"findings"`
	Remediations []ProactiveRemediation `json:"remediations"`
	// Error says why the diagnosis could not run; the event goes out without it.
	Error string `json:"error,omitempty"`
}

// ProactiveFinding is a rule of the topic that matched.
type ProactiveFinding struct {
	Rule     string         `json:"rule"`
	Title    string         `json:"title"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// ProactiveRemediation is a fix to offer: a remote action, or a message.
type ProactiveRemediation struct {
	ID           string            `json:"id"`
	Title        string            `json:"title,omitempty"`
	RemoteAction string            `json:"remote_action,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
	Message      string            `json:"message,omitempty"`
}
