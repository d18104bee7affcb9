package fleet

import (
	"maps"
	"time"
)

// Execution statuses: the status tokens of remote_action.executions.
const (
	StatusPending          = "pending"
	StatusInProgress       = "in_progress"
	StatusWaitingForDevice = "waiting_for_device"
	StatusSuccess          = "success"
	StatusFailure          = "failure"
	StatusExpired          = "expired"
	StatusCancelled        = "cancelled"
)

// Terminal reports whether status is final.
func Terminal(status string) bool {
	switch status {
	case StatusSuccess, StatusFailure, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// Execution is one remote-action execution on one device: a row of
// remote_action.executions. Records are immutable once stored: updates store a copy.
type Execution struct {
	RequestID         string
	Device            int
	ActionID          string // NQL id with '#', "#set_outlook_online"
	ActionName        string // "Set Outlook online"
	Purpose           string // "data_collection" or "remediation"
	Inputs            map[string]string
	Status            string
	StatusDetails     string
	Outputs           map[string]any // nil until the execution succeeds
	Time              time.Time      // last status change
	Created           time.Time
	Started           time.Time // zero until in progress
	ExpiresAt         time.Time
	ExternalSource    string
	ExternalReference string
	Reason            string
}

// lastExec is the last execution of one data-collection action on one device.
type lastExec struct {
	status, details string
	time            time.Time
}

// deviceExecs holds, per data action, the device's last execution when the API ran it
// (nil: the scheduled collection, status success at dcAgo). Copy-on-write.
type deviceExecs [nDataActions]*lastExec

// AddExecution stores e and returns its handle.
func (f *Fleet) AddExecution(e Execution) int {
	e.Inputs = maps.Clone(e.Inputs)
	f.mu.Lock()
	defer f.mu.Unlock()
	h := len(f.execs)
	f.execs = append(f.execs, &e)
	f.byReq[e.RequestID] = append(f.byReq[e.RequestID], h)
	f.setLastExecLocked(e)
	return h
}

// Execution returns a copy of the execution with handle h.
func (f *Fleet) Execution(h int) Execution {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return *f.execs[h]
}

// ExecutionsOf returns copies of the executions of a request, in device order of the
// request.
func (f *Fleet) ExecutionsOf(requestID string) []Execution {
	f.mu.RLock()
	defer f.mu.RUnlock()
	hs := f.byReq[requestID]
	out := make([]Execution, 0, len(hs))
	for _, h := range hs {
		out = append(out, *f.execs[h])
	}
	return out
}

// SetStatus moves execution h to status at time at. On success it applies the
// remediation's effect to the device, or records a data-collection action's outputs.
// It returns the updated execution.
func (f *Fleet) SetStatus(h int, status, details string, at time.Time) Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := *f.execs[h]
	e.Status, e.StatusDetails, e.Time = status, details, at
	if status == StatusInProgress && e.Started.IsZero() {
		e.Started = at
	}
	if status == StatusSuccess {
		d := &f.devs[e.Device]
		if k := dataActionIndex(e.ActionID); k >= 0 {
			e.Outputs = outputsOf(d, k)
		} else {
			e.Outputs = map[string]any{}
			if k, ok := remediate(d, e.ActionID, e.Inputs); ok {
				// The device's next scheduled collection sees the repair.
				f.setDataExecLocked(uint32(e.Device), k, &lastExec{StatusSuccess, detailsSuccess, at})
			}
		}
		// The device reported the result: it was seen then.
		if f.onlineLocked(uint32(e.Device)) {
			d.lastSeenAgo = 0
		}
	}
	f.execs[h] = &e
	f.setLastExecLocked(e)
	return e
}

// detailsSuccess is the status_details of a successful execution.
const detailsSuccess = "Script executed successfully"

// setLastExecLocked records e as the last execution of a data-collection action.
func (f *Fleet) setLastExecLocked(e Execution) {
	k := dataActionIndex(e.ActionID)
	if k < 0 {
		return
	}
	f.setDataExecLocked(uint32(e.Device), k, &lastExec{e.Status, e.StatusDetails, e.Time})
}

func (f *Fleet) setDataExecLocked(dev uint32, k int, le *lastExec) {
	next := &deviceExecs{}
	if cur := f.lastExec[dev]; cur != nil {
		*next = *cur
	}
	next[k] = le
	f.lastExec[dev] = next
}
