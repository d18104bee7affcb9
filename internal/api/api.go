// Package api is the REST API's answers as Go types: the ingress encodes them, and
// another front end can answer with the same types. The order of the fields is the
// order of the members the API sends; schemas/openapi.yaml documents each body.
package api

import (
	"encoding/json"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// Health is GET /healthz.
type Health struct {
	Status string `json:"status"` // ok
}

// Ready is GET /readyz: each check's state, ok or unavailable.
type Ready struct {
	Checks map[string]string `json:"checks"`
	Status string            `json:"status"` // ready or unavailable
}

// Topics is GET /api/v1/topics.
type Topics struct {
	Topics []events.Topic `json:"topics"`
}

// Devices is GET /api/v1/devices: an employee's devices, or a device. People groups
// a user's devices per person; Ambiguous says the identifier matched several.
type Devices struct {
	Ambiguous bool            `json:"ambiguous"`
	DataAsOf  *time.Time      `json:"data_as_of"`
	Devices   []events.Device `json:"devices"`
	People    []events.Person `json:"people,omitempty"`
	Source    string          `json:"source"`
}

// Device is GET /api/v1/devices/{device}. Note and OtherMatches are there when
// several devices have the name.
type Device struct {
	DataAsOf     *time.Time          `json:"data_as_of"`
	Device       events.DeviceDetail `json:"device"`
	Note         string              `json:"note,omitempty"`
	OtherMatches []events.DeviceRef  `json:"other_matches,omitempty"`
	Source       string              `json:"source"`
}

// Status is GET /api/v1/status.
type Status struct {
	Cache     events.CacheSize        `json:"cache"`
	Instances []events.InstanceStatus `json:"instances"`
}

// DiscoveryRuns is POST /api/v1/admin/discovery.
type DiscoveryRuns struct {
	Runs []events.DiscoveryRunStart `json:"runs"`
}

// QueryResult is POST /api/v1/nql/{query_id}.
type QueryResult struct {
	DataAsOf *time.Time       `json:"data_as_of"`
	Headers  []string         `json:"headers"`
	Instance string           `json:"instance"`
	QueryID  string           `json:"query_id"`
	Rows     []map[string]any `json:"rows"`
	Source   string           `json:"source"`
	// Truncated says the instance cut the rows at RowLimit (NQL execute's cap);
	// POST /api/v1/nql/{query_id}/export returns them all.
	Truncated bool `json:"truncated"`
	RowLimit  int  `json:"row_limit,omitempty"`
}

// DiagnosisRequest is the body of POST /api/v1/topics/{topic}/diagnosis. The
// jsonschema tags describe the fields to MCP clients, whose tool schemas are
// generated from these types.
type DiagnosisRequest struct {
	Device  string `json:"device" jsonschema:"the device to diagnose: its name or collector UID, as identify_devices returns them"`
	Refresh bool   `json:"refresh,omitempty" jsonschema:"collect fresh data from the device first (slower: up to the configured refresh timeout, and the device must be online)"`
}

// Diagnosis is the answer to POST /api/v1/topics/{topic}/diagnosis.
type Diagnosis = events.Diagnosis

// RemediationRequest is the body of POST /api/v1/topics/{topic}/remediations/{id}.
type RemediationRequest struct {
	Device      string `json:"device" jsonschema:"the device to fix: its name or collector UID"`
	WaitSeconds *int   `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the final state before answering with the execution as it is (0 answers at once)"`
	Reason      string `json:"reason,omitempty" jsonschema:"why the fix runs, in the employee's words (kept with the execution, at most 500 characters)"`
	Force       bool   `json:"force,omitempty" jsonschema:"run even when the same fix is already running on the device"`
}

// Reload is POST /api/v1/admin/reload when every worker put the new set in force.
type Reload struct {
	Status   string         `json:"status"`
	Problems []string       `json:"-"`
	Workers  []ReloadWorker `json:"workers"`
	Expected int            `json:"expected"` // the workers found
	Answered int            `json:"answered"`
}

// ReloadRefusal is the problem document of a refused reload, with the problems and
// the workers' answers as extension members.
type ReloadRefusal struct {
	problem.Document
	Problems []string       `json:"problems"`
	Workers  []ReloadWorker `json:"workers"`
}

// ReloadWorker is one worker's answer to a reload.
type ReloadWorker struct {
	Worker   string    `json:"worker"`
	Status   string    `json:"status"`
	Problems []string  `json:"problems,omitempty"`
	Topics   int       `json:"topics"`
	Queries  int       `json:"queries"`
	LoadedAt time.Time `json:"loaded_at"`
}

// RemoteActions is GET /api/v1/remote-actions.
type RemoteActions struct {
	RemoteActions []events.RemoteAction `json:"remote_actions"`
}

// Execution is an execution as the API returns it; Replayed marks the answer to a
// retried trigger, Existing the answer with an active execution of the same fix.
type Execution struct {
	events.Execution
	Replayed bool `json:"replayed,omitempty"`
	Existing bool `json:"existing,omitempty"`
}

// Executions is GET /api/v1/remote-actions/executions: a page, newest first;
// NextCursor is null on the last page.
type Executions struct {
	Executions []events.Execution `json:"executions"`
	NextCursor *string            `json:"next_cursor"`
}

// WebhookAccepted is the answer to a webhook.
type WebhookAccepted struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	Duplicate bool   `json:"duplicate"`
	// DedupeKey is how dexbridge recognises this webhook when it comes again.
	DedupeKey string `json:"dedupe_key"`
}

// WebhookDeliveries is GET /api/v1/webhooks/deliveries: what arrived, newest first.
// NextCursor is null on the last page.
type WebhookDeliveries struct {
	Deliveries []WebhookDelivery `json:"deliveries"`
	NextCursor *string           `json:"next_cursor"`
}

// WebhookDelivery is a webhook that arrived and what became of it.
type WebhookDelivery struct {
	ID          string    `json:"id"`
	Source      string    `json:"source"`
	DeliveryID  string    `json:"delivery_id,omitempty"`
	DedupeKey   string    `json:"dedupe_key"`
	ReceivedAt  time.Time `json:"received_at"`
	ProcessedAt time.Time `json:"processed_at"`
	// Outcome is opened, closed, nothing_to_close, suppressed, healthy_not_sent,
	// unresolved, ignored, invalid or failed; Detail says why.
	Outcome     string `json:"outcome"`
	Detail      string `json:"detail,omitempty"`
	Monitor     string `json:"monitor,omitempty"`
	AlertStatus string `json:"alert_status,omitempty"`
	// Attempts is how many times it was delivered to the worker.
	Attempts int `json:"attempts"`
	// Events are the proactive events it recorded or closed.
	Events []WebhookDeliveryEvent `json:"events"`
	// Payload is the body, kept for invalid and failed webhooks only.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// WebhookDeliveryEvent is a proactive event a webhook recorded or closed.
type WebhookDeliveryEvent struct {
	ID         string `json:"id"`
	Status     string `json:"status"` // open, closed, suppressed, unresolved or healthy
	Employee   string `json:"employee,omitempty"`
	Device     string `json:"device,omitempty"`
	Assessment string `json:"assessment,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// ProactiveEvents is GET /api/v1/proactive/events.
type ProactiveEvents struct {
	Events     []events.ProactiveEvent `json:"events"`
	NextCursor string                  `json:"next_cursor"`
}

// APIKey is an API key as the API shows it: never its secret or hash.
type APIKey struct {
	ID                 string     `json:"id"`
	Name               string     `json:"name"`
	Scopes             []string   `json:"scopes"`
	Status             string     `json:"status"`
	CreatedBy          string     `json:"created_by"`
	CreatedAt          time.Time  `json:"created_at"`
	ExpiresAt          *time.Time `json:"expires_at"`
	RevokedAt          *time.Time `json:"revoked_at"`
	LastUsedAt         *time.Time `json:"last_used_at"`
	RateLimitPerSecond *float64   `json:"rate_limit_per_second"`
	// EmployeeUPN is the employee a delegate key acts for; null for other keys.
	EmployeeUPN *string `json:"employee_upn"`
}

// APIKeys is GET /api/v1/api-keys.
type APIKeys struct {
	APIKeys []APIKey `json:"api_keys"`
}

// NewAPIKey is POST /api/v1/api-keys: the key and, this once, its secret.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// LegacyAPIKey is the V6 SDK's POST /v1/api_key: the secret as api_key too.
type LegacyAPIKey struct {
	Secret string `json:"api_key"`
	APIKey
	Key string `json:"key"`
}

// NewSubscription is the body of POST /api/v1/proactive/subscriptions: where to
// deliver, which events (an empty filter takes every value), in which locale.
type NewSubscription struct {
	URL       string   `json:"url"`
	Monitors  []string `json:"monitors,omitempty"`
	Topics    []string `json:"topics,omitempty"`
	Instances []string `json:"instances,omitempty"`
	Locale    string   `json:"locale,omitempty"` // BCP 47; default en
}

// Subscription is a subscription to proactive events as the API shows it: never
// its secret. Origin is api, or config for the callback configured in the
// environment. State is active or paused (a delivery ran out of attempts:
// LastError says why; resume it); Failures counts the failed attempts since the
// last success; Pending the deliveries waiting.
type Subscription struct {
	ID            string     `json:"id"`
	Origin        string     `json:"origin"`
	URL           string     `json:"url"`
	Monitors      []string   `json:"monitors"`
	Topics        []string   `json:"topics"`
	Instances     []string   `json:"instances"`
	Locale        string     `json:"locale"`
	State         string     `json:"state"`
	Failures      int        `json:"failures"`
	LastError     *string    `json:"last_error"`
	LastFailureAt *time.Time `json:"last_failure_at"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	PausedAt      *time.Time `json:"paused_at"`
	Pending       int        `json:"pending"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Subscriptions is GET /api/v1/proactive/subscriptions.
type Subscriptions struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// CreatedSubscription is POST /api/v1/proactive/subscriptions: the subscription
// and, this once, the secret that signs its deliveries (whsec_<base64>, Standard
// Webhooks).
type CreatedSubscription struct {
	Subscription
	Secret string `json:"secret"`
}
