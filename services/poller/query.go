package poller

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// QueryID is the saved query the poller runs (config/queries.yaml):
// #get_remote_action_result for many request ids at once.
const QueryID = "#dexbridge_remote_action_results"

// BatchSize is how many executions one query asks about (N): the query has that many
// parameters, $request_id_1 ... $request_id_250.
//
// Why 250: one execution is one device, so a query returns at most N rows, well under
// NQL execute's 1000-row cap even if a request id matched several rows; the saved
// text stays short enough to paste into the tenant (about 4 KB) and a request carries
// about 14 KB of parameters; and 200 pending executions of one instance, a busy day, fit
// one query. Above N pending executions an instance gets one query per 250 (1000
// pending: 4 queries every 5 s, 0.8 a second of MAX_ENGINE_REQUESTS_PER_SECOND's 40).
const BatchSize = 250

// unusedRequestID fills the parameters a tick does not need: the nil UUID, which no
// Nexthink request id (a version 4 UUID) is.
const unusedRequestID = "00000000-0000-0000-0000-000000000000"

// Param is the name of parameter i (0-based) of the query.
func Param(i int) string { return fmt.Sprintf("request_id_%d", i+1) }

// QueryText is the NQL of QueryID, as it must be saved in every instance. The
// timeframe covers the longest expiresInMinutes the Remote Actions API allows (7
// days); the statuses and outputs of older executions no longer matter.
func QueryText() string {
	var b strings.Builder
	b.WriteString("remote_action.executions past 7d\n| where request_id in [")
	for i := range BatchSize {
		switch {
		case i == 0:
		case i%8 == 0:
			b.WriteString(",\n  ")
		default:
			b.WriteString(", ")
		}
		b.WriteString("$" + Param(i))
	}
	b.WriteString("]\n| list request_id, device.collector.uid, device.name, remote_action.name,\n  status, status_details, outputs\n")
	return b.String()
}

// Params are the query's parameters for up to BatchSize request ids.
func Params(requestIDs []string) map[string]string {
	p := make(map[string]string, BatchSize)
	for i := range BatchSize {
		v := unusedRequestID
		if i < len(requestIDs) {
			v = requestIDs[i]
		}
		p[Param(i)] = v
	}
	return p
}

// Chunks splits executions into groups of at most BatchSize.
func Chunks(open []store.Execution) [][]store.Execution {
	var out [][]store.Execution
	for len(open) > 0 {
		n := min(len(open), BatchSize)
		out = append(out, open[:n])
		open = open[n:]
	}
	return out
}

// MapStatus maps a status of remote_action.executions onto dexbridge's; ok is false
// for a status it does not know (the execution is left as it is).
func MapStatus(s string) (string, bool) {
	norm := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(s)))
	switch norm {
	case "pending", "queued", "submitted", "created":
		return events.StatusPending, true
	case "in_progress", "inprogress", "running", "executing", "started":
		return events.StatusInProgress, true
	case "waiting_for_device", "waiting", "waitingfordevice", "device_offline":
		return events.StatusWaitingForDevice, true
	case "success", "succeeded", "successful", "completed", "done":
		return events.StatusSuccess, true
	case "failure", "failed", "error":
		return events.StatusFailure, true
	case "expired", "timed_out", "timeout":
		return events.StatusExpired, true
	case "cancelled", "canceled":
		return events.StatusCancelled, true
	}
	return "", false
}

// expiredDetails explains an execution dexbridge expired itself.
const expiredDetails = "expired: no final state within its expiresInMinutes"

// Plan compares the open executions of a chunk with the rows the query returned for
// them and returns the changes to record: the new state of each execution whose row
// says something new, and expired for those still open past their expiry (plus
// grace, so the tenant's own final state wins a race with the clock). Rows are
// matched by request id and collector UID.
func Plan(open []store.Execution, rows []map[string]any, now time.Time, grace time.Duration) []store.ExecutionChange {
	byKey := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		id := field(r, "request_id")
		if id == "" {
			continue
		}
		byKey[id+"\x00"+strings.ToLower(field(r, "device.collector.uid"))] = r
		byKey[id] = r
	}
	var out []store.ExecutionChange
	for _, e := range open {
		status, details := e.Status, e.StatusDetails
		var outputs map[string]any
		r, ok := byKey[e.RequestID+"\x00"+strings.ToLower(e.CollectorUID)]
		if !ok {
			r, ok = byKey[e.RequestID]
		}
		if ok {
			if s, known := MapStatus(field(r, "status")); known {
				status, details = s, field(r, "status_details")
				outputs = parseOutputs(r)
			}
		}
		if !events.FinalStatus(status) && !now.Before(e.ExpiresAt.Add(grace)) {
			out = append(out, store.ExecutionChange{ID: e.ID, Status: events.StatusExpired, StatusDetails: expiredDetails, Source: store.SourceExpiry})
			continue
		}
		if status == e.Status && details == e.StatusDetails && (outputs == nil || sameJSON(outputs, e.Outputs)) {
			continue
		}
		out = append(out, store.ExecutionChange{ID: e.ID, Status: status, StatusDetails: details, Outputs: outputs, Source: store.SourcePoller})
	}
	return out
}

// field reads a column by its fully qualified name on remote_action.executions, or
// as listed.
func field(r map[string]any, name string) string {
	v, ok := r["remote_action.executions."+name]
	if !ok {
		v = r[name]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// parseOutputs reads the outputs column: a JSON object as text (or already decoded).
// Empty or unreadable outputs are none.
func parseOutputs(r map[string]any) map[string]any {
	v, ok := r["remote_action.executions.outputs"]
	if !ok {
		v = r["outputs"]
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
		return x
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(x), &m) != nil || len(m) == 0 {
			return nil
		}
		return m
	}
	return nil
}

func sameJSON(a, b map[string]any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return string(ra) == string(rb)
}
