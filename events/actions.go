package events

import "time"

// Type tokens of the remote-action messages.
const (
	TypeActionsListRequest      = "dexbridge.actions.v1.list_request"
	TypeActionsListReply        = "dexbridge.actions.v1.list_reply"
	TypeActionsTriggerRequest   = "dexbridge.actions.v1.trigger_request"
	TypeActionsGetRequest       = "dexbridge.actions.v1.get_request"
	TypeExecutionReply          = "dexbridge.actions.v1.execution_reply"
	TypeExecutionUpdatedEvent   = "dexbridge.actions.v1.execution_updated"
	TypeActionsRemediateRequest = "dexbridge.actions.v1.remediate_request"
)

// StreamExecutions is the JetStream stream (name relative to the deployment, see
// Subjects.Stream) of execution updates: evt.actions.updated.<execution id>.
const StreamExecutions = "EXECUTIONS"

// Execution states, as the API shows them. The last four are final.
const (
	StatusPending          = "pending"
	StatusInProgress       = "in_progress"
	StatusWaitingForDevice = "waiting_for_device"
	StatusSuccess          = "success"
	StatusFailure          = "failure"
	StatusExpired          = "expired"
	StatusCancelled        = "cancelled"
)

// FinalStatus reports whether an execution in status s will not change again.
func FinalStatus(s string) bool {
	switch s {
	case StatusSuccess, StatusFailure, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// ActionsListRequest asks for the allow-listed remote actions.
type ActionsListRequest struct {
	Header
}

// ActionsListReply lists them.
type ActionsListReply struct {
	Header
	Actions []RemoteAction `json:"remote_actions"`
}

// RemoteAction is an allow-listed remote action as a chatbot sees it.
type RemoteAction struct {
	ID          string        `json:"id"` // NQL id, "#set_outlook_online"
	Title       string        `json:"title"`
	Description string        `json:"description,omitempty"`
	Purpose     string        `json:"purpose"` // data_collection or remediation
	Platforms   []string      `json:"platforms"`
	Inputs      []ActionInput `json:"inputs"`
}

// ActionInput is a declared input of a remote action.
type ActionInput struct {
	Name        string `json:"name"`
	Required    bool   `json:"required"`
	Description string `json:"description,omitempty"`
}

// ActionsTriggerRequest runs a remote action on a device. The worker checks the
// allow-list and the declared inputs, resolves the device to its collector UID and
// instance, and records the execution and an audit record before calling Nexthink.
type ActionsTriggerRequest struct {
	Header
	RemoteAction      string            `json:"remote_action"`
	Device            string            `json:"device"` // name or collector UID
	Params            map[string]string `json:"params,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	ExternalReference string            `json:"external_reference,omitempty"`
	// IdempotencyKey makes a retried trigger return the first execution.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Topic and Remediation name the topic remediation that asked, for the audit.
	Topic       string `json:"topic,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Force runs the action even when an execution of it with the same params is
	// still active on the device (else that execution is the answer, Existing).
	Force bool `json:"force,omitempty"`
}

// ActionsRemediateRequest runs remediation Remediation of topic Topic on Device, with
// the params of the latest diagnosis of that topic on that device. The worker answers
// like a trigger: an ExecutionReply.
type ActionsRemediateRequest struct {
	Header
	Topic          string `json:"topic"`
	Remediation    string `json:"remediation"`
	Device         string `json:"device"` // name or collector UID
	Reason         string `json:"reason,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Force: as for a trigger.
	Force bool `json:"force,omitempty"`
}

// ActionsGetRequest asks for one execution by its dexbridge id.
type ActionsGetRequest struct {
	Header
	ID string `json:"id"`
}

// ExecutionReply carries an execution.
type ExecutionReply struct {
	Header
	Execution Execution `json:"execution"`
	// Replayed is true when an Idempotency-Key matched an earlier trigger.
	Replayed bool `json:"replayed,omitempty"`
	// Existing is true when the execution is an active one of the same remote action
	// with the same params on the device, which this trigger did not repeat.
	Existing bool `json:"existing,omitempty"`
}

// ExecutionUpdatedEvent is published on every state change.
type ExecutionUpdatedEvent struct {
	Header
	Execution Execution `json:"execution"`
}

// Execution is one remote action run on one device.
type Execution struct {
	ID                string            `json:"id"`                   // dexbridge's id
	RequestID         string            `json:"request_id,omitempty"` // Nexthink's requestId
	RemoteAction      string            `json:"remote_action"`
	Device            ExecutionDevice   `json:"device"`
	Params            map[string]string `json:"params,omitempty"`
	Status            string            `json:"status"`
	StatusDetails     string            `json:"status_details,omitempty"`
	Outputs           map[string]any    `json:"outputs,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	ExternalReference string            `json:"external_reference,omitempty"`
	// Topic and Remediation name the topic remediation that ran it, if one did.
	Topic       string    `json:"topic,omitempty"`
	Remediation string    `json:"remediation,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// ExecutionDevice is the device an execution runs on, or a diagnosis is about.
// LastSeen and Presence, when known, say when Nexthink last heard from it and
// whether it counts as online (PresenceAt) at the time of the answer.
type ExecutionDevice struct {
	Name         string     `json:"name"`
	CollectorUID string     `json:"collector_uid"`
	Instance     string     `json:"instance"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
	Presence     string     `json:"presence,omitempty"`
}
