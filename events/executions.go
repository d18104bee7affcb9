package events

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// Type tokens of the execution list.
const (
	TypeExecutionsListRequest = "dexbridge.executions.v1.list_request"
	TypeExecutionsListReply   = "dexbridge.executions.v1.list_reply"
)

// Bounds of a page of executions.
const (
	DefaultExecutionsPage = 50
	MaxExecutionsPage     = 200
	MaxCursor             = 128
)

// cursorPattern is the shape of an opaque cursor (base64url); what it holds is the
// business of the service that made it.
var cursorPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ExecutionStatuses are the statuses of an execution, in the order they come.
func ExecutionStatuses() []string {
	return []string{StatusPending, StatusInProgress, StatusWaitingForDevice, StatusSuccess, StatusFailure, StatusExpired, StatusCancelled}
}

// ExecutionsListRequest asks for a page of executions, newest first. Every filter is
// optional; Cursor is the NextCursor of the previous page of the same query.
type ExecutionsListRequest struct {
	Header
	Device       string     `json:"device,omitempty"` // a name or collector UID
	Statuses     []string   `json:"statuses,omitempty"`
	Since        *time.Time `json:"since,omitempty"` // created at or after
	RemoteAction string     `json:"remote_action,omitempty"`
	Limit        int        `json:"limit,omitempty"` // 0: DefaultExecutionsPage
	Cursor       string     `json:"cursor,omitempty"`
}

// ExecutionsListReply is a page; NextCursor is empty on the last one.
type ExecutionsListReply struct {
	Header
	Executions []Execution `json:"executions"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// CheckExecutionStatus checks one status a list is filtered by.
func CheckExecutionStatus(s string) error {
	if !slices.Contains(ExecutionStatuses(), s) {
		return problem.InvalidField("status", "unknown status %q: want one or several of %s", s, strings.Join(ExecutionStatuses(), ", "))
	}
	return nil
}

// Validate checks the filters and the shape of the cursor.
func (r ExecutionsListRequest) Validate() error {
	if r.Device != "" {
		if err := CheckDevice(r.Device); err != nil {
			return err
		}
	}
	for _, s := range r.Statuses {
		if err := CheckExecutionStatus(s); err != nil {
			return err
		}
	}
	if r.RemoteAction != "" && !nqlIDPattern.MatchString(r.RemoteAction) {
		return problem.InvalidField("remote_action", "want a remote action's NQL id such as #repair_onedrive")
	}
	if r.Limit < 0 || r.Limit > MaxExecutionsPage {
		return problem.InvalidField("limit", "want 1 to %d", MaxExecutionsPage)
	}
	if r.Cursor != "" && !cursorPattern.MatchString(r.Cursor) {
		return InvalidCursor()
	}
	return nil
}

// InvalidCursor is the answer to a cursor that was not made for the query it comes with.
func InvalidCursor() error {
	return problem.InvalidField("cursor", "this cursor was not issued for this query: pass the next_cursor of the previous page, with the same filters, or start again without a cursor")
}
