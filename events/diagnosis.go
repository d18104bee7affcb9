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
}

// DiagnoseReply is the diagnosis.
type DiagnoseReply struct {
	Header
	Diagnosis Diagnosis `json:"diagnosis"`
}

// Diagnosis is what a topic found on a device.
type Diagnosis struct {
	ID     string          `json:"id"`
	Topic  string          `json:"topic"`
	Device ExecutionDevice `json:"device"`
	// Fields are the values the topic's queries returned, by fully qualified name.
	Fields       map[string]any    `json:"fields"`
	Findings     []Finding         `json:"findings"`            // rules that found their problem
	Rules        []RuleResult      `json:"rules"`               // every rule: found, clear or not_evaluated
	Remediations []SuggestedRemedy `json:"remediations"`        // from the findings, then the generic ones
	Refreshed    []Execution       `json:"refreshed,omitempty"` // data collections run for refresh
	Source       string            `json:"source"`              // cache, live or mixed
	DataAsOf     *time.Time        `json:"data_as_of"`          // the oldest data used
	DiagnosedAt  time.Time         `json:"diagnosed_at"`
	Timing       map[string]int64  `json:"timing_ms,omitempty"`
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
