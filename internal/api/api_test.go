package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
)

// TestBodiesEncodeAsTheMapsTheyReplace: the ingress used to build these answers as
// map[string]any, which encoding/json writes with sorted keys; the types write the
// same bytes, so no client sees a difference.
func TestBodiesEncodeAsTheMapsTheyReplace(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dev := events.Device{CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", Name: "PC-1", Instance: "eu", LastSeen: &at}
	detail := events.DeviceDetail{Device: dev, Fields: map[string]any{"device.name": "PC-1"}, Users: []events.DeviceUser{}}
	others := []events.DeviceRef{{Instance: "us", CollectorUID: "c0ffee00-0000-4000-8000-000000000001", Name: "PC-1"}}
	tests := []struct {
		name  string
		typed any
		was   any
	}{
		{"health", api.Health{Status: "ok"}, map[string]string{"status": "ok"}},
		{"ready", api.Ready{Checks: map[string]string{"nats": "ok"}, Status: "ready"},
			map[string]any{"status": "ready", "checks": map[string]string{"nats": "ok"}}},
		{"topics", api.Topics{Topics: []events.Topic{{ID: "outlook"}}}, map[string]any{"topics": []events.Topic{{ID: "outlook"}}}},
		{"no topics", api.Topics{}, map[string]any{"topics": []events.Topic(nil)}},
		{"devices", api.Devices{DataAsOf: &at, Devices: []events.Device{dev}, Source: "cache"},
			map[string]any{"devices": []events.Device{dev}, "source": "cache", "data_as_of": &at, "ambiguous": false}},
		{"devices live, no time", api.Devices{Devices: []events.Device{}, Source: "live"},
			map[string]any{"devices": []events.Device{}, "source": "live", "data_as_of": (*time.Time)(nil), "ambiguous": false}},
		{"people", api.Devices{Devices: []events.Device{dev}, Source: "cache", Ambiguous: true,
			People: []events.Person{{Instance: "eu", User: "tmeier", Devices: []events.Device{dev}}}},
			map[string]any{"devices": []events.Device{dev}, "source": "cache", "data_as_of": (*time.Time)(nil), "ambiguous": true,
				"people": []events.Person{{Instance: "eu", User: "tmeier", Devices: []events.Device{dev}}}}},
		{"device", api.Device{DataAsOf: &at, Device: detail, Source: "cache"},
			map[string]any{"device": detail, "source": "cache", "data_as_of": &at}},
		{"device of a shared name", api.Device{DataAsOf: &at, Device: detail, Source: "cache", OtherMatches: others, Note: "n"},
			map[string]any{"device": detail, "source": "cache", "data_as_of": &at, "other_matches": others, "note": "n"}},
		{"status", api.Status{Cache: events.CacheSize{Devices: 2}, Instances: []events.InstanceStatus{{Name: "eu", State: "up"}}},
			map[string]any{"instances": []events.InstanceStatus{{Name: "eu", State: "up"}}, "cache": events.CacheSize{Devices: 2}}},
		{"runs", api.DiscoveryRuns{Runs: []events.DiscoveryRunStart{{Instance: "eu", Status: events.RunStarted, RunID: 7}}},
			map[string]any{"runs": []events.DiscoveryRunStart{{Instance: "eu", Status: events.RunStarted, RunID: 7}}}},
		{"query", api.QueryResult{DataAsOf: &at, Headers: []string{"device.name"}, Instance: "eu", QueryID: "#q",
			Rows: []map[string]any{{"device.name": "PC-1"}}, Source: "cache"},
			map[string]any{"query_id": "#q", "headers": []string{"device.name"}, "rows": []map[string]any{{"device.name": "PC-1"}},
				"source": "cache", "instance": "eu", "data_as_of": &at}},
		{"remote actions", api.RemoteActions{RemoteActions: []events.RemoteAction{{ID: "#a"}}},
			map[string]any{"remote_actions": []events.RemoteAction{{ID: "#a"}}}},
		{"proactive events", api.ProactiveEvents{Events: []events.ProactiveEvent{}, NextCursor: "17"},
			map[string]any{"events": []events.ProactiveEvent{}, "next_cursor": "17"}},
		{"api keys", api.APIKeys{APIKeys: []api.APIKey{{ID: "key_0123456789abcdef", CreatedAt: at}}},
			map[string]any{"api_keys": []api.APIKey{{ID: "key_0123456789abcdef", CreatedAt: at}}}},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.typed)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(tt.was)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, want)
		}
	}
}
