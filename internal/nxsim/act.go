package nxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// handleListActions serves GET /api/v1/act/remote-action.
func (t *tenant) handleListActions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.library)
}

// handleActionDetails serves GET /api/v1/act/remote-action/details?nql-id=#id.
func (t *tenant) handleActionDetails(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("nql-id")
	if id == "" {
		writeActError(w, http.StatusBadRequest, "MISSING_NQL_ID", "The nql-id query parameter is required.")
		return
	}
	a := t.action(id)
	if a == nil {
		writeActError(w, http.StatusNotFound, "NOT_FOUND", "No remote action associated with that NQL ID.")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// action finds a remote action by NQL id (with or without '#').
func (t *tenant) action(id string) *remoteAction {
	if !strings.HasPrefix(id, "#") {
		id = "#" + id
	}
	for k := range t.library {
		if t.library[k].ID == id {
			return &t.library[k]
		}
	}
	return nil
}

// executeActionRequest is the ExecutionRequest schema.
type executeActionRequest struct {
	RemoteActionID   *string           `json:"remoteActionId"`
	Params           map[string]string `json:"params"`
	Devices          []string          `json:"devices"`
	ExpiresInMinutes *int              `json:"expiresInMinutes"`
	TriggerInfo      *triggerInfo      `json:"triggerInfo"`
}

type triggerInfo struct {
	ExternalSource    string `json:"externalSource"`
	Reason            string `json:"reason"`
	ExternalReference string `json:"externalReference"`
}

// Limits of the execute request.
const (
	maxDevices       = 10000
	minExpiresInMins = 60
	maxExpiresInMins = 10080
	maxReasonLength  = 500
)

// validateExecute checks an execute request against the OpenAPI schema and the
// library; it returns the status, error code and message of the first problem.
func (t *tenant) validateExecute(req *executeActionRequest) (*remoteAction, int, string, string) {
	bad := func(code, msg string) (*remoteAction, int, string, string) {
		return nil, http.StatusBadRequest, code, msg
	}
	if req.RemoteActionID == nil || *req.RemoteActionID == "" {
		return bad("INVALID_REMOTE_ACTION_ID", "remoteActionId is required.")
	}
	if req.Devices == nil || len(req.Devices) == 0 {
		return bad("INVALID_DEVICES", "devices must hold 1 to 10000 collector IDs.")
	}
	if len(req.Devices) > maxDevices {
		return bad("TOO_MANY_DEVICES", fmt.Sprintf("devices holds %d collector IDs, at most %d are allowed.", len(req.Devices), maxDevices))
	}
	if req.ExpiresInMinutes != nil && (*req.ExpiresInMinutes < minExpiresInMins || *req.ExpiresInMinutes > maxExpiresInMins) {
		return bad("INVALID_EXPIRATION", fmt.Sprintf("expiresInMinutes must be between %d and %d.", minExpiresInMins, maxExpiresInMins))
	}
	if req.TriggerInfo != nil && len([]rune(req.TriggerInfo.Reason)) > maxReasonLength {
		return bad("INVALID_TRIGGER_INFO", fmt.Sprintf("triggerInfo.reason is longer than %d characters.", maxReasonLength))
	}
	a := t.action(*req.RemoteActionID)
	if a == nil {
		return bad("REMOTE_ACTION_NOT_FOUND", "No remote action associated with that ID: "+*req.RemoteActionID+".")
	}
	if !a.Targeting.APIEnabled {
		return nil, http.StatusForbidden, "REMOTE_ACTION_NOT_API_ENABLED", "The remote action " + a.ID + " is not enabled for API triggering."
	}
	known := map[string]bool{}
	for _, in := range a.ScriptInfo.Inputs {
		known[in.ID] = true
		if v, ok := req.Params[in.ID]; in.required && (!ok || strings.TrimSpace(v) == "") {
			return bad("MISSING_PARAMETER", "The parameter "+in.ID+" is required.")
		}
	}
	var unknown []string
	for k := range req.Params {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return bad("UNKNOWN_PARAMETER", "Unknown parameters for "+a.ID+": "+strings.Join(unknown, ", ")+".")
	}
	return a, http.StatusOK, "", ""
}

// handleExecuteAction serves POST /api/v1/act/execute.
//
// Devices are collector UIDs. Unknown UIDs are skipped: executions are created for
// the known devices only, and a request with no known device is a 400
// (NO_VALID_DEVICES).
func (t *tenant) handleExecuteAction(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		writeActError(w, http.StatusBadRequest, "INVALID_REQUEST", "Request body too large or unreadable.")
		return
	}
	var req executeActionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		msg := "Invalid request body."
		if err != nil {
			msg = "Invalid request body: " + err.Error() + "."
		}
		writeActError(w, http.StatusBadRequest, "INVALID_REQUEST", msg)
		return
	}
	if req.RemoteActionID != nil {
		t.counters.action(*req.RemoteActionID)
	}
	a, status, code, msg := t.validateExecute(&req)
	if status != http.StatusOK {
		writeActError(w, status, code, msg)
		return
	}
	devices := make([]int, 0, len(req.Devices))
	seen := map[int]bool{}
	for _, uid := range req.Devices {
		if i, ok := t.fleet.DeviceByCollectorUID(strings.TrimSpace(uid)); ok && !seen[i] {
			seen[i] = true
			devices = append(devices, i)
		}
	}
	if len(devices) == 0 {
		writeActError(w, http.StatusBadRequest, "NO_VALID_DEVICES", "None of the devices is known to this instance.")
		return
	}
	expires := minExpiresInMins
	if req.ExpiresInMinutes != nil {
		expires = *req.ExpiresInMinutes
	}
	var ti triggerInfo
	if req.TriggerInfo != nil {
		ti = *req.TriggerInfo
	}
	reqID := t.executor.submit("", a, devices, req.Params, time.Duration(expires)*time.Minute, ti)
	t.log.Info("remote action triggered", "request_id", reqID, "remote_action", a.ID, "devices", len(devices))
	writeJSON(w, http.StatusOK, map[string]any{"requestId": reqID, "expiresInMinutes": expires})
}
