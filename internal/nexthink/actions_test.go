package nexthink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func TestRemoteActionsListAndDetails(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	ctx := context.Background()
	list, err := c.RemoteActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := simInfo(t, sim, "eu")
	if len(list) != len(info.RemoteActions) {
		t.Errorf("got %d remote actions, want %d", len(list), len(info.RemoteActions))
	}
	byID := map[string]RemoteAction{}
	for _, a := range list {
		byID[a.ID] = a
	}
	tests := []struct {
		id         string
		purpose    string
		apiEnabled bool
		input      string // an input id, or ""
		output     string // an output id, or ""
	}{
		{"#get_outlook_online_windows", PurposeDataCollection, true, "", "IsOnline"},
		{"#disable_application_from_startup_menu", PurposeRemediation, true, "ApplicationNames", ""},
		{"#restart_device", PurposeRemediation, false, "", ""},
	}
	for _, tt := range tests {
		d, err := c.RemoteAction(ctx, tt.id)
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if d.ID != tt.id || d.UUID == "" || d.Name == "" || d.Origin == "" || d.ScriptInfo.RunAs == "" || d.ScriptInfo.TimeoutSeconds <= 0 {
			t.Errorf("%s: got %+v, want every field", tt.id, d)
		}
		if len(d.Purpose) != 1 || d.Purpose[0] != tt.purpose || d.Targeting.APIEnabled != tt.apiEnabled {
			t.Errorf("%s: got purpose %v, api enabled %v; want %s, %v", tt.id, d.Purpose, d.Targeting.APIEnabled, tt.purpose, tt.apiEnabled)
		}
		if tt.input != "" && (len(d.ScriptInfo.Inputs) == 0 || d.ScriptInfo.Inputs[0].ID != tt.input) {
			t.Errorf("%s: got inputs %+v, want %s", tt.id, d.ScriptInfo.Inputs, tt.input)
		}
		if tt.output != "" && (len(d.ScriptInfo.Outputs) == 0 || d.ScriptInfo.Outputs[0].ID != tt.output) {
			t.Errorf("%s: got outputs %+v, want %s", tt.id, d.ScriptInfo.Outputs, tt.output)
		}
		if l, ok := byID[tt.id]; !ok || l.UUID != d.UUID {
			t.Errorf("%s: list and details differ", tt.id)
		}
	}
	_, err = c.RemoteAction(ctx, "#no_such_action")
	if p := Problem(err); p.Code != problem.NotFound || p.Detail != "instance eu has no remote action #no_such_action" {
		t.Errorf("unknown action: got %v (%s %q)", err, p.Code, p.Detail)
	}
}

// A trigger reaches nxsim with its triggerInfo, and the execution it created is
// readable through NQL with that information.
func TestTriggerRoundTrip(t *testing.T) {
	t.Parallel()
	sim := startSim(t, func(c *nxsim.Config) {
		c.Queries = map[string]string{"#trigger_info": `remote_action.executions past 24h
| where request_id == $request_id
| list request_id, device.name, remote_action.name, external_source, external_reference, status`}
	})
	c := newClient(t, sim, "eu", "eu-client", nil)
	ctx := context.Background()
	uid := collectorUID(t, c, "jdoe") // PC-OUTLOOK-OFFLINE
	resp, err := c.Trigger(ctx, TriggerRequest{
		RemoteActionID: "#set_outlook_online", Devices: []string{uid}, ExpiresInMinutes: 120,
		TriggerInfo: &TriggerInfo{ExternalSource: "dexbridge-test", Reason: "Outlook is offline", ExternalReference: "INC0012345"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.RequestID == "" || resp.ExpiresInMinutes != 120 {
		t.Fatalf("got %+v, want a request id and 120 minutes", resp)
	}
	execs, err := ctl(t, sim, "eu").c.Executions(context.Background(), resp.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if len(execs) != 1 || execs[0].Device != "PC-OUTLOOK-OFFLINE" || execs[0].RemoteAction != "#set_outlook_online" {
		t.Errorf("nxsim executions: got %+v", execs)
	}
	res, err := c.Execute(ctx, "#trigger_info", map[string]string{"request_id": resp.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("got %d execution rows, want 1", len(res.Rows))
	}
	row := res.Rows[0]
	for field, want := range map[string]any{
		"remote_action.executions.external_source":    "dexbridge-test",
		"remote_action.executions.external_reference": "INC0012345",
		"device.name": "PC-OUTLOOK-OFFLINE",
	} {
		if row[field] != want {
			t.Errorf("%s: got %#v, want %#v (row %v)", field, row[field], want, row)
		}
	}
	if got := counters(t, sim, "eu"); got.Endpoints[epActExec] != 1 || got.RemoteActions["#set_outlook_online"] != 1 {
		t.Errorf("nxsim counted %d triggers, %v", got.Endpoints[epActExec], got.RemoteActions)
	}
}

func TestTriggerRefusals(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	uid := collectorUID(t, c, "bwayne")
	tests := []struct {
		name  string
		req   TriggerRequest
		code  problem.Code
		calls int64 // triggers that reach nxsim
	}{
		{"reason too long", TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{uid},
			TriggerInfo: &TriggerInfo{Reason: strings.Repeat("é", 501)}}, problem.Invalid, 0},
		{"reason of 500", TriggerRequest{RemoteActionID: "#no_such_action", Devices: []string{uid},
			TriggerInfo: &TriggerInfo{Reason: strings.Repeat("é", 500)}}, problem.NotFound, 1},
		{"no device", TriggerRequest{RemoteActionID: "#disk_cleanup"}, problem.Invalid, 0},
		{"too many devices", TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: make([]string, 10001)}, problem.Invalid, 0},
		{"expires too soon", TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{uid}, ExpiresInMinutes: 59}, problem.Invalid, 0},
		{"expires too late", TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{uid}, ExpiresInMinutes: 10081}, problem.Invalid, 0},
		{"not enabled for the API", TriggerRequest{RemoteActionID: "#restart_device", Devices: []string{uid}}, problem.Unprocessable, 1},
		{"missing input", TriggerRequest{RemoteActionID: "#disable_application_from_startup_menu", Devices: []string{uid}}, problem.Invalid, 1},
		{"unknown device", TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{"nope"}}, problem.Invalid, 1},
	}
	for _, tt := range tests {
		before := counters(t, sim, "eu").Endpoints[epActExec]
		_, err := c.Trigger(context.Background(), tt.req)
		var e *Error
		if !errors.As(err, &e) || e.Call != callActExecute {
			t.Fatalf("%s: got %v, want an act.execute error", tt.name, err)
		}
		if p := e.Problem(); p.Code != tt.code {
			t.Errorf("%s: got %s (%v), want %s", tt.name, p.Code, err, tt.code)
		}
		if n := counters(t, sim, "eu").Endpoints[epActExec] - before; n != tt.calls {
			t.Errorf("%s: got %d calls at nxsim, want %d", tt.name, n, tt.calls)
		}
	}
}
