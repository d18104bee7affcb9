package events

import "time"

// Type tokens of the diagnosis and NQL messages.
const (
	TypeDiagnoseRequest = "dexbridge.topics.v1.diagnose_request"
	TypeDiagnoseReply   = "dexbridge.topics.v1.diagnose_reply"
	TypeNQLRequest      = "dexbridge.nql.v1.execute_request"
	TypeNQLReply        = "dexbridge.nql.v1.execute_reply"
)

// DiagnoseRequest asks for a diagnosis of Topic on Device (name or collector UID).
// Refresh first runs the topic's data-collection remote actions and waits for them
// within a bound.
type DiagnoseRequest struct {
	Header
	Topic   string `json:"topic"`
	Device  string `json:"device"`
	Refresh bool   `json:"refresh,omitempty"`
	// Locale is the language of the rules', findings' and remediations' titles and
	// messages (internal/locale; English when empty or not translated).
	Locale string `json:"locale,omitempty"`
}

// DiagnoseReply is the diagnosis.
type DiagnoseReply struct {
	Header
	Diagnosis Diagnosis `json:"diagnosis"`
}

// Diagnosis is what a topic found on a device.
type Diagnosis struct {
	ID    string `json:"id"`
	Topic string `json:"topic"`
	// Device is the device diagnosed, with when Nexthink last heard from it and its
	// presence then.
	Device ExecutionDevice `json:"device"`
	// Verdict sums the diagnosis up: problems_found, healthy or inconclusive.
	// VerdictReasons say what keeps it from being healthy (or what limits a
	// problems_found): rules not evaluated, stale or missing data.
	Verdict        string          `json:"verdict"`
	VerdictReasons []VerdictReason `json:"verdict_reasons,omitempty"`
	// Fields are the values the topic's queries returned, by fully qualified name; a
	// value dexbridge kept from an earlier collection stands in for one a newer,
	// unfinished collection hides (FieldTimes marks it last_known).
	Fields map[string]any `json:"fields"`
	// FieldTimes dates each value of Fields that Nexthink can date (the columns that
	// describe an execution, such as its status, are not dated).
	FieldTimes   map[string]FieldTime `json:"field_times"`
	Findings     []Finding            `json:"findings"`            // rules that found their problem
	Rules        []RuleResult         `json:"rules"`               // every rule: found, clear or not_evaluated
	Remediations []SuggestedRemedy    `json:"remediations"`        // from the findings, then the generic ones
	Refreshed    []Execution          `json:"refreshed,omitempty"` // data collections run for refresh
	Source       string               `json:"source"`              // cache, live or mixed: where dexbridge got the data
	// DataAsOf is the time of the oldest value used (the earliest of FieldTimes),
	// never later than Device.LastSeen; null when no value could be dated.
	DataAsOf *time.Time `json:"data_as_of"`
	// Stale is true when DataAsOf is older than the topic's max age (MaxAgeSeconds).
	Stale         bool             `json:"stale"`
	MaxAgeSeconds int64            `json:"max_age_seconds"`
	DiagnosedAt   time.Time        `json:"diagnosed_at"`
	Timing        map[string]int64 `json:"timing_ms,omitempty"`
}

// Verdicts of a diagnosis.
const (
	// VerdictProblemsFound: at least one rule found its problem.
	VerdictProblemsFound = "problems_found"
	// VerdictHealthy: every rule was evaluated, on dated data no older than the
	// topic's max age, and none found its problem.
	VerdictHealthy = "healthy"
	// VerdictInconclusive: no problem found, but not every rule could be evaluated or
	// the data is stale or missing.
	VerdictInconclusive = "inconclusive"
)

// Codes of a VerdictReason.
const (
	ReasonRulesNotEvaluated = "rules_not_evaluated" // Rules lists them; each rule result says why
	ReasonStaleData         = "stale_data"          // data_as_of is older than the topic's max age
	ReasonNoData            = "no_data"             // a query returned no row for the device (Queries), or no value could be dated
	ReasonNoRules           = "no_rules"            // the topic has no rules to evaluate
)

// VerdictReason is one thing that keeps a diagnosis from being healthy.
type VerdictReason struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Rules   []string `json:"rules,omitempty"`
	Queries []string `json:"queries,omitempty"`
}

// FieldTime is the time of one value of a diagnosis.
type FieldTime struct {
	// AsOf is when Nexthink had the value: the collection time of a remote action's
	// output, the device's last_seen for its own data. Absent when it cannot be dated
	// (an output no collection ever gave).
	AsOf *time.Time `json:"as_of,omitempty"`
	// From is the field AsOf was read from: device.last_seen or
	// remote_action.<id>.execution.time.
	From string `json:"from"`
	// LastKnown is true when the value is the one dexbridge kept from an earlier
	// collection, because the device's latest collection (LatestStatus) has not
	// produced one.
	LastKnown    bool   `json:"last_known,omitempty"`
	LatestStatus string `json:"latest_status,omitempty"`
}

// Finding is a rule that matched, with the evidence it read.
type Finding struct {
	Rule         string         `json:"rule"`
	Title        string         `json:"title"`
	Evidence     map[string]any `json:"evidence"`
	Remediations []string       `json:"remediations"`
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	Rule     string         `json:"rule"`
	Title    string         `json:"title"`
	Status   string         `json:"status"` // found, clear, not_evaluated
	Reason   string         `json:"reason,omitempty"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// SuggestedRemedy is a remediation the diagnosis suggests: a remote action with its
// params, or a message for the employee.
type SuggestedRemedy struct {
	ID           string            `json:"id"`
	Title        string            `json:"title"`
	RemoteAction string            `json:"remote_action,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
	Ready        bool              `json:"ready"`
	NotReady     string            `json:"not_ready,omitempty"`
	Message      string            `json:"message,omitempty"`
	Rules        []string          `json:"rules,omitempty"`
	Generic      bool              `json:"generic,omitempty"`
	// InProgress is the execution of this remote action with these params that is
	// still active on the device: running the remediation now answers with it.
	InProgress *RemedyInProgress `json:"in_progress,omitempty"`
}

// RemedyInProgress is the active execution of a suggested remediation.
type RemedyInProgress struct {
	ExecutionID string    `json:"execution_id"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

// NQLRequest runs a saved query. Instance is needed only when the query selects no
// device and several instances are configured.
type NQLRequest struct {
	Header
	QueryID    string            `json:"query_id"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Instance   string            `json:"instance,omitempty"`
}

// NQLReply is the query's answer and where it came from.
type NQLReply struct {
	Header
	QueryID  string           `json:"query_id"`
	Headers  []string         `json:"headers"`
	Rows     []map[string]any `json:"rows"`
	Source   string           `json:"source"` // cache or live
	Instance string           `json:"instance"`
	DataAsOf *time.Time       `json:"data_as_of"`
	// Truncated says the instance cut the rows at RowLimit (NQL execute's cap): more
	// exist, and an export (NQLExport) returns them all.
	Truncated bool `json:"truncated"`
	RowLimit  int  `json:"row_limit,omitempty"`
}
