package events_test

import (
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func TestCheckTrigger(t *testing.T) {
	ok := events.ActionsTriggerRequest{RemoteAction: "#repair_onedrive", Device: "PC-1", Params: map[string]string{"A": "1"}}
	tests := []struct {
		name  string
		mod   func(*events.ActionsTriggerRequest)
		field string
	}{
		{"good", func(*events.ActionsTriggerRequest) {}, ""},
		{"collector uid", func(r *events.ActionsTriggerRequest) { r.Device = "cf05120d-508a-4b9f-a596-6c3865d118a1" }, ""},
		{"no hash", func(r *events.ActionsTriggerRequest) { r.RemoteAction = "repair_onedrive" }, "remote_action"},
		{"wildcard device", func(r *events.ActionsTriggerRequest) { r.Device = "PC-*" }, "device"},
		{"subject token device", func(r *events.ActionsTriggerRequest) { r.Device = "a.>" }, "device"},
		{"no device", func(r *events.ActionsTriggerRequest) { r.Device = "" }, "device"},
		{"bad param name", func(r *events.ActionsTriggerRequest) { r.Params = map[string]string{"a b": "1"} }, "params"},
		{"control in a param", func(r *events.ActionsTriggerRequest) { r.Params = map[string]string{"A": "x\x00"} }, "params.A"},
		{"long reason", func(r *events.ActionsTriggerRequest) { r.Reason = strings.Repeat("é", 501) }, "reason"},
		{"500 characters", func(r *events.ActionsTriggerRequest) { r.Reason = strings.Repeat("é", 500) }, ""},
		{"key with a space", func(r *events.ActionsTriggerRequest) { r.IdempotencyKey = "a b" }, "Idempotency-Key"},
	}
	for _, tt := range tests {
		req := ok
		tt.mod(&req)
		err := req.Validate()
		got := ""
		if err != nil {
			got = problem.From(err).Field
		}
		if got != tt.field || (err == nil) != (tt.field == "") {
			t.Errorf("%s: got %v (field %q), want field %q", tt.name, err, got, tt.field)
		}
	}
}

// TestReasonBoundIsTheTenants: a reason the checks let through is one the Remote
// Actions API takes (events cannot import the client, which its tests would cycle).
func TestReasonBoundIsTheTenants(t *testing.T) {
	if events.MaxReason != nexthink.MaxTriggerReasonRune {
		t.Errorf("got %d, want the Remote Actions API's %d", events.MaxReason, nexthink.MaxTriggerReasonRune)
	}
}

// TestWorkersRefuseWhatTheIngressRefuses: the checks a worker runs on a device,
// a topic or an identifier are the ingress's, so a malformed value sent straight
// over NATS is refused as it would be over HTTP.
func TestWorkersRefuseWhatTheIngressRefuses(t *testing.T) {
	tests := []struct {
		name  string
		req   interface{ Validate() error }
		field string // "" for accepted
	}{
		{"device by name", events.DevicesGetRequest{Device: "PC-1"}, ""},
		{"device by collector uid", events.DevicesGetRequest{Device: "cf05120d-508a-4b9f-a596-6c3865d118a1"}, ""},
		{"wildcard device", events.DevicesGetRequest{Device: "PC-*"}, "device"},
		{"device path", events.DevicesGetRequest{Device: "../etc"}, "device"},
		{"diagnosis", events.DiagnoseRequest{Topic: "outlook", Device: "PC-1"}, ""},
		{"diagnosis of a bad topic id", events.DiagnoseRequest{Topic: "Outlook!", Device: "PC-1"}, "topic"},
		{"diagnosis of a wildcard device", events.DiagnoseRequest{Topic: "outlook", Device: "PC-*"}, "device"},
		{"identify by upn", events.DevicesIdentifyRequest{Key: events.KeyUPN, Value: "jdoe@example.com"}, ""},
		{"upn without domain", events.DevicesIdentifyRequest{Key: events.KeyUPN, Value: "jdoe"}, "upn"},
		{"wildcard user", events.DevicesIdentifyRequest{Key: events.KeyUsername, Value: "j*"}, "username"},
		{"unknown key", events.DevicesIdentifyRequest{Key: "user", Value: "jdoe"}, "key"},
		{"saved query", events.NQLRequest{QueryID: "#l1_device_checklist", Instance: "eu"}, ""},
		{"saved query without #", events.NQLRequest{QueryID: "l1_device_checklist"}, "query_id"},
		{"bad instance", events.NQLRequest{QueryID: "#l1_device_checklist", Instance: "EU!"}, "instance"},
		{"identify on an instance", events.DevicesIdentifyRequest{Key: events.KeyUsername, Value: "tmeier", Instance: "eu"}, ""},
		{"identify on a malformed instance", events.DevicesIdentifyRequest{Key: events.KeyUsername, Value: "tmeier", Instance: "EU!"}, "instance"},
		{"device on a malformed instance", events.DevicesGetRequest{Device: "PC-1", Instance: "eu us"}, "instance"},
		{"domain user", events.DevicesIdentifyRequest{Key: events.KeyUsername, Value: `CORP\jdoe`}, ""},
		{"domain without user", events.DevicesIdentifyRequest{Key: events.KeyUsername, Value: `CORP\`}, "username"},
		{"remediation", events.ActionsRemediateRequest{Topic: "slow_pc", Remediation: "restart", Device: "PC-1"}, ""},
		{"bad remediation id", events.ActionsRemediateRequest{Topic: "slow_pc", Remediation: "re start", Device: "PC-1"}, "remediation"},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		got := ""
		if err != nil {
			got = problem.From(err).Field
		}
		if got != tt.field || (err == nil) != (tt.field == "") {
			t.Errorf("%s: got %v (field %q), want field %q", tt.name, err, got, tt.field)
		}
	}
}
