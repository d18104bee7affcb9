package nexthink

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"
)

const (
	callActList    = "act.remote_actions"
	callActDetails = "act.remote_action"
	callActExecute = "act.execute"
)

// Limits of a trigger (Remote Actions API, ExecutionRequest).
const (
	MaxTriggerDevices    = 10000
	MinExpiresInMinutes  = 60
	MaxExpiresInMinutes  = 10080
	MaxTriggerReasonRune = 500
)

// Purposes of a remote action.
const (
	PurposeDataCollection = "DATA_COLLECTION"
	PurposeRemediation    = "REMEDIATION"
)

// RemoteAction is the RemoteAction schema of the Remote Actions API.
type RemoteAction struct {
	ID                    string     `json:"id"` // NQL id, "#get_outlook_online_windows"
	UUID                  string     `json:"uuid"`
	Name                  string     `json:"name"`
	Description           string     `json:"description"`
	Origin                string     `json:"origin"`
	BuiltInContentVersion string     `json:"builtInContentVersion"`
	Purpose               []string   `json:"purpose"` // PurposeDataCollection, PurposeRemediation
	Targeting             Targeting  `json:"targeting"`
	ScriptInfo            ScriptInfo `json:"scriptInfo"`
}

// Targeting says how a remote action may be triggered.
type Targeting struct {
	APIEnabled                 bool `json:"apiEnabled"`
	ManualEnabled              bool `json:"manualEnabled"`
	WorkflowEnabled            bool `json:"workflowEnabled"`
	ManualAllowMultipleDevices bool `json:"manualAllowMultipleDevices"`
}

// ScriptInfo describes a remote action's scripts.
type ScriptInfo struct {
	ExecutionServiceDelegate string   `json:"executionServiceDelegate"`
	RunAs                    string   `json:"runAs"` // LOCAL_SYSTEM, INTERACTIVE_USER, DELEGATE_TO_SERVICE
	TimeoutSeconds           int      `json:"timeoutSeconds"`
	HasScriptWindows         bool     `json:"hasScriptWindows"`
	HasScriptMacOs           bool     `json:"hasScriptMacOs"`
	Inputs                   []Input  `json:"inputs"`
	Outputs                  []Output `json:"outputs"`
}

// Input is a parameter of a remote action.
type Input struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Description      string   `json:"description"`
	UsedByWindows    bool     `json:"usedByWindows"`
	UsedByMacOs      bool     `json:"usedByMacOs"`
	Options          []string `json:"options"`
	AllowCustomValue bool     `json:"allowCustomValue"`
}

// Output is a result field of a remote action.
type Output struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Description   string `json:"description"`
	UsedByWindows bool   `json:"usedByWindows"`
	UsedByMacOs   bool   `json:"usedByMacOs"`
}

// TriggerRequest is the ExecutionRequest schema.
type TriggerRequest struct {
	RemoteActionID   string            `json:"remoteActionId"`
	Devices          []string          `json:"devices"`          // collector UIDs, 1 to 10000
	Params           map[string]string `json:"params,omitempty"` // script inputs
	ExpiresInMinutes int               `json:"expiresInMinutes,omitempty"`
	TriggerInfo      *TriggerInfo      `json:"triggerInfo,omitempty"`
}

// TriggerInfo tells the tenant who triggered an action and why.
type TriggerInfo struct {
	ExternalSource    string `json:"externalSource,omitempty"`    // "dexbridge"
	Reason            string `json:"reason,omitempty"`            // at most 500 characters
	ExternalReference string `json:"externalReference,omitempty"` // ticket or conversation id
}

// TriggerResponse is the ExecutionResponse schema.
type TriggerResponse struct {
	RequestID        string `json:"requestId"`
	ExpiresInMinutes int    `json:"expiresInMinutes"`
}

// RemoteActions lists the remote actions of the instance.
func (c *Client) RemoteActions(ctx context.Context) ([]RemoteAction, error) {
	var out []RemoteAction
	if _, err := c.do(ctx, request{call: callActList, method: http.MethodGet, path: "/api/v1/act/remote-action",
		limiter: c.actions, policy: retryReads}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RemoteAction returns one remote action by NQL id ("#get_outlook_online_windows").
func (c *Client) RemoteAction(ctx context.Context, nqlID string) (*RemoteAction, error) {
	if nqlID == "" {
		return nil, &Error{Instance: c.name, Call: callActDetails, Code: CodeInvalid, Message: "remote action id is empty"}
	}
	var out RemoteAction
	if _, err := c.do(ctx, request{call: callActDetails, method: http.MethodGet, path: "/api/v1/act/remote-action/details",
		query: url.Values{"nql-id": {nqlID}}, target: nqlID, limiter: c.actions, policy: retryReads}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Trigger executes a remote action on devices. It is retried only when the request
// certainly did not run (no connection, no token, 429 or 503): a trigger sent twice
// could run the action twice on every device.
func (c *Client) Trigger(ctx context.Context, req TriggerRequest) (*TriggerResponse, error) {
	if msg := checkTrigger(req); msg != "" {
		return nil, &Error{Instance: c.name, Call: callActExecute, Target: req.RemoteActionID, Code: CodeInvalid, Message: msg}
	}
	var out TriggerResponse
	if _, err := c.do(ctx, request{call: callActExecute, method: http.MethodPost, path: "/api/v1/act/execute",
		body: req, target: req.RemoteActionID, limiter: c.actions, policy: retryUnsent}, &out); err != nil {
		return nil, err
	}
	if out.RequestID == "" {
		return nil, &Error{Instance: c.name, Call: callActExecute, Target: req.RemoteActionID, Status: http.StatusOK,
			Code: CodeBadResponse, Message: "the answer holds no requestId"}
	}
	return &out, nil
}

// checkTrigger returns why the API would refuse req, or "".
func checkTrigger(req TriggerRequest) string {
	switch {
	case req.RemoteActionID == "":
		return "remoteActionId is required"
	case len(req.Devices) == 0 || len(req.Devices) > MaxTriggerDevices:
		return fmt.Sprintf("devices: want 1 to %d collector ids, got %d", MaxTriggerDevices, len(req.Devices))
	case req.ExpiresInMinutes != 0 && (req.ExpiresInMinutes < MinExpiresInMinutes || req.ExpiresInMinutes > MaxExpiresInMinutes):
		return fmt.Sprintf("expiresInMinutes: want %d to %d, got %d", MinExpiresInMinutes, MaxExpiresInMinutes, req.ExpiresInMinutes)
	case req.TriggerInfo != nil && utf8.RuneCountInString(req.TriggerInfo.Reason) > MaxTriggerReasonRune:
		return fmt.Sprintf("triggerInfo.reason: want at most %d characters", MaxTriggerReasonRune)
	}
	for _, d := range req.Devices {
		if d == "" {
			return "devices: a collector id is empty"
		}
	}
	return ""
}
