package mcpserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// The tools' arguments: the REST request bodies of internal/api, plus what the REST
// API takes in the path, the query or a header.

type identifyArgs struct {
	UPN          string `json:"upn,omitempty" jsonschema:"the employee's user principal name, such as jdoe@example.com (a delegate key may give only its own employee's)"`
	Username     string `json:"username,omitempty" jsonschema:"the employee's user name: jdoe, CORP\\jdoe or jdoe@example.com"`
	Email        string `json:"email,omitempty" jsonschema:"the employee's email address"`
	SID          string `json:"sid,omitempty" jsonschema:"the employee's Windows security identifier"`
	DeviceName   string `json:"device_name,omitempty" jsonschema:"a device's name, to look a device up instead of an employee"`
	CollectorUID string `json:"collector_uid,omitempty" jsonschema:"a device's Nexthink collector UID"`
	Instance     string `json:"instance,omitempty" jsonschema:"the Nexthink instance to search, when an earlier answer was ambiguous"`
}

type noArgs struct{}

type diagnoseArgs struct {
	Topic string `json:"topic" jsonschema:"the topic id, from list_topics (for example outlook)"`
	api.DiagnosisRequest
}

type remediateArgs struct {
	Topic       string `json:"topic" jsonschema:"the topic of the diagnosis that suggested the remediation"`
	Remediation string `json:"remediation" jsonschema:"the remediation id, from the diagnosis's remediations"`
	api.RemediationRequest
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"any unique string (a UUID): a retry with the same key answers with the first call's execution instead of running the fix again"`
}

type executionArgs struct {
	ID          string `json:"id" jsonschema:"the execution id remediate returned"`
	WaitSeconds *int   `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (at most 25) for the next change of state"`
}

type proactiveArgs struct {
	After string `json:"after,omitempty" jsonschema:"the next_cursor of the previous page, to read what changed since"`
	Limit *int   `json:"limit,omitempty" jsonschema:"at most this many events (1 to 1000, default 100)"`
}

func ptr[T any](v T) *T { return &v }

// mcpWait checks a wait against what MCP clients wait for a call.
func mcpWait(field string, v *int) error {
	if v != nil && (*v < 0 || *v > maxWaitSeconds) {
		return problem.InvalidField(field, "want 0 to %d seconds: follow a longer operation with get_execution", maxWaitSeconds)
	}
	return nil
}

func tools() []adder {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)}
	return []adder{
		tool[identifyArgs, api.Devices]{
			name: "identify_devices", title: "Identify the employee's devices", annotations: readOnly,
			description: "Find an employee's devices (most recently active first), by exactly one of upn, username, email or sid; " +
				"or a device by device_name or collector_uid. When the answer is ambiguous, ask the employee which person they are " +
				"(people's full names) and narrow with instance. With a delegate key (acting for one employee), give no argument: " +
				"the answer is that employee's devices.",
			call: func(a identifyArgs) (call, error) {
				q := url.Values{}
				for k, v := range map[string]string{"upn": a.UPN, "username": a.Username, "email": a.Email, "sid": a.SID,
					"device_name": a.DeviceName, "collector_uid": a.CollectorUID, "instance": a.Instance} {
					if v != "" {
						q.Set(k, v)
					}
				}
				return call{method: http.MethodGet, path: "/api/v1/devices", query: q}, nil
			},
			summary: summarizeDevices,
		},
		tool[noArgs, api.Topics]{
			name: "list_topics", title: "List the topics", annotations: readOnly,
			description: "List the topics dexbridge can diagnose (Outlook crashing, slow PC, ...), with the phrases employees use " +
				"for each and the remediations each may suggest. Pick the topic that matches the employee's complaint.",
			call:    func(noArgs) (call, error) { return call{method: http.MethodGet, path: "/api/v1/topics"}, nil },
			summary: summarizeTopics,
		},
		tool[diagnoseArgs, api.Diagnosis]{
			name: "diagnose", title: "Diagnose a topic on a device", annotations: readOnly,
			description: "Run a topic's checks on one device: the verdict (problems_found, healthy, inconclusive), the findings, " +
				"and the remediations they suggest. Diagnose again after a fix to confirm it.",
			call: func(a diagnoseArgs) (call, error) {
				topic, err := segment("topic", a.Topic)
				if err != nil {
					return call{}, err
				}
				return call{method: http.MethodPost, path: "/api/v1/topics/" + topic + "/diagnosis", body: a.DiagnosisRequest}, nil
			},
			summary: summarizeDiagnosis,
		},
		tool[remediateArgs, api.Execution]{
			name: "remediate", title: "Run a fix on a device",
			annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)},
			required:    []string{"reason"},
			description: "Run a remediation a diagnosis suggested (a Nexthink remote action) on the employee's device. Ask the " +
				"employee before running it, and give the reason in their words. It answers at once (or within wait_seconds, at " +
				"most 25) with the execution; follow it with get_execution until its status is success, failure, expired or " +
				"cancelled. Pass an idempotency_key so that a retried call does not run the fix twice.",
			call: func(a remediateArgs) (call, error) {
				topic, err := segment("topic", a.Topic)
				if err != nil {
					return call{}, err
				}
				rem, err := segment("remediation", a.Remediation)
				if err != nil {
					return call{}, err
				}
				if err := mcpWait("wait_seconds", a.WaitSeconds); err != nil {
					return call{}, err
				}
				c := call{method: http.MethodPost, path: "/api/v1/topics/" + topic + "/remediations/" + rem, body: a.RemediationRequest}
				if a.IdempotencyKey != "" {
					c.header = http.Header{"Idempotency-Key": {a.IdempotencyKey}}
				}
				return c, nil
			},
			summary: summarizeExecution,
		},
		tool[executionArgs, api.Execution]{
			name: "get_execution", title: "Follow a fix", annotations: readOnly,
			description: "Read a remediation's execution: its status (pending, waiting_for_device, in_progress, success, failure, " +
				"expired, cancelled) and outputs; with wait_seconds, wait for its next change. When it succeeded, diagnose again " +
				"to confirm the problem is gone.",
			call: func(a executionArgs) (call, error) {
				id, err := segment("id", a.ID)
				if err != nil {
					return call{}, err
				}
				if err := mcpWait("wait_seconds", a.WaitSeconds); err != nil {
					return call{}, err
				}
				c := call{method: http.MethodGet, path: "/api/v1/remote-actions/executions/" + id}
				if a.WaitSeconds != nil && *a.WaitSeconds > 0 {
					c.query = url.Values{"wait": {strconv.Itoa(*a.WaitSeconds)}}
				}
				return c, nil
			},
			summary: summarizeExecution,
		},
		tool[proactiveArgs, api.ProactiveEvents]{
			name: "list_proactive_events", title: "Read proactive events", annotations: readOnly,
			description: "Read the problems Nexthink detected on employees' devices before they complained (open and closed " +
				"events, oldest change first), each with the message to open the conversation with and the remediations on " +
				"offer. Pass next_cursor as after to read only what changed since.",
			call: func(a proactiveArgs) (call, error) {
				q := url.Values{}
				if a.After != "" {
					q.Set("after", a.After)
				}
				if a.Limit != nil {
					q.Set("limit", strconv.Itoa(*a.Limit))
				}
				return call{method: http.MethodGet, path: "/api/v1/proactive/events", query: q}, nil
			},
			summary: summarizeProactive,
		},
	}
}

// The summaries: a few lines for the model; the structured content has everything.

const maxListed = 10

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func summarizeDevices(d api.Devices, _ answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d device(s) found (source %s).", len(d.Devices), d.Source)
	if d.Ambiguous {
		b.WriteString(" The identifier matched several people: ask the employee which one they are, and narrow with instance.")
	}
	for i, dev := range d.Devices {
		if i == maxListed {
			fmt.Fprintf(&b, "\n... and %d more", len(d.Devices)-maxListed)
			break
		}
		fmt.Fprintf(&b, "\n- %s (%s, %s, last seen %s, instance %s, collector_uid %s)", dev.Name, dev.Platform,
			dev.Presence, when(dev.LastSeen), dev.Instance, dev.CollectorUID)
	}
	return b.String()
}

func summarizeTopics(t api.Topics, _ answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d topic(s):", len(t.Topics))
	for _, topic := range t.Topics {
		fmt.Fprintf(&b, "\n- %s: %s", topic.ID, topic.Title)
	}
	return b.String()
}

func summarizeDiagnosis(d api.Diagnosis, _ answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Diagnosis of %s on %s (%s, last seen %s): %s.", d.Topic, d.Device.Name, d.Device.Presence,
		when(d.Device.LastSeen), d.Verdict)
	for _, f := range d.Findings {
		fmt.Fprintf(&b, "\n- found: %s", f.Title)
	}
	for _, r := range d.VerdictReasons {
		fmt.Fprintf(&b, "\n- note: %s", r.Message)
	}
	for _, r := range d.Remediations {
		state := "ready"
		if !r.Ready {
			state = "not ready: " + r.NotReady
		}
		if r.RemoteAction == "" {
			state = "a message for the employee"
		}
		fmt.Fprintf(&b, "\n- remediation %s: %s (%s)", r.ID, r.Title, state)
	}
	return b.String()
}

func summarizeExecution(e api.Execution, a answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Execution %s of %s on %s: %s.", e.ID, e.RemoteAction, e.Device.Name, e.Status)
	if e.StatusDetails != "" {
		fmt.Fprintf(&b, " %s", e.StatusDetails)
	}
	switch {
	case e.Replayed:
		b.WriteString(" (the answer to an earlier call with this idempotency key)")
	case e.Existing:
		b.WriteString(" (already running on the device: not started again)")
	}
	if !events.FinalStatus(e.Status) {
		fmt.Fprintf(&b, " Follow it with get_execution id=%s.", e.ID)
	}
	return b.String()
}

func summarizeProactive(p api.ProactiveEvents, _ answer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d event(s); next_cursor %s.", len(p.Events), p.NextCursor)
	for i, ev := range p.Events {
		if i == maxListed {
			fmt.Fprintf(&b, "\n... and %d more", len(p.Events)-maxListed)
			break
		}
		who, dev := "", ""
		if ev.Employee != nil {
			who = ev.Employee.Name
		}
		if ev.Device != nil {
			dev = ev.Device.Name
		}
		fmt.Fprintf(&b, "\n- %s (%s) %s for %s on %s: %s", ev.ID, ev.Status, ev.Monitor, who, dev, ev.Message)
	}
	return b.String()
}
