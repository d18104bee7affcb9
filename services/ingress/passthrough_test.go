package ingress

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
)

// The answer assembled from the worker's JSON is byte for byte what decoding the
// reply and encoding api.Devices gives.
func TestIdentifyAnswerIsTheDecodedAnswer(t *testing.T) {
	seen := time.Date(2026, 3, 1, 12, 30, 0, 123_000_000, time.UTC)
	local := time.Date(2026, 3, 1, 14, 30, 0, 0, time.FixedZone("", 2*3600))
	dev := events.Device{CollectorUID: "c0ffee00-0000-4000-8000-000000000001", Name: `PC-<&>"quoted"\ é`, Instance: "eu",
		Platform: "windows", LastSeen: &seen, Presence: "online", LastActivity: &local, User: "CORP\\jdoe",
		UserFullName: "Jöhn \u2028Doe", MatchedBy: "username"}
	replies := map[string]events.DevicesIdentifyReply{
		"devices and people": {Header: events.NewHeader(events.TypeDevicesIdentifyReply), Devices: []events.Device{dev, dev},
			Source: "cache", DataAsOf: &seen, People: []events.Person{{Instance: "eu", User: "jdoe", MatchedBy: "username", Devices: []events.Device{dev}}},
			Ambiguous: true},
		"no devices":     {Header: events.NewHeader(events.TypeDevicesIdentifyReply), Source: "live"},
		"empty people":   {Header: events.NewHeader(events.TypeDevicesIdentifyReply), Devices: []events.Device{}, People: []events.Person{}, Source: "cache", DataAsOf: &local},
		"the zero reply": {},
	}
	for name, reply := range replies {
		raw, err := json.Marshal(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := identifyAnswer(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var decoded events.DevicesIdentifyReply
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		if decoded.Devices == nil {
			decoded.Devices = []events.Device{}
		}
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(api.Devices{DataAsOf: decoded.DataAsOf, Devices: decoded.Devices, Source: decoded.Source,
			People: decoded.People, Ambiguous: decoded.Ambiguous})
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want.Bytes())
		}
	}
}

// A reply of another shape is refused, for the decoding path to answer it.
func TestIdentifyAnswerRefusesOtherShapes(t *testing.T) {
	for _, raw := range []string{
		``, `[]`, `{`, `{"source":"cache"`, `{"source":"cache"} x`, `{"source":1}`, `{"devices":{},"source":"cache"}`,
		`{"ambiguous":"yes","source":"cache"}`, `{"data_as_of":5,"source":"cache"}`, `{"so\u0075rce":"cache"}`,
		`{"devices":[{"name":"unterminated}],"source":"cache"}`, `{"devices":[[],"source":"cache"}`, `{"devices":[},"source":"cache"}`, `{"devices":,"source":"cache"}`,
		`{"people":true,"source":"cache"}`, `{"devices":[]}`,
	} {
		if got, err := identifyAnswer([]byte(raw)); err == nil {
			t.Errorf("%s: answered %s", raw, got)
		}
	}
}
