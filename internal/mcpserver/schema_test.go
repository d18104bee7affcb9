package mcpserver

import (
	"encoding/json"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
)

// validates checks that v, as the REST API encodes it, matches the output schema
// generated from T.
func validates[T any](t *testing.T, what string, v T) {
	t.Helper()
	resolved, err := schema[T]().Resolve(nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var instance any
	if err := json.Unmarshal(raw, &instance); err != nil {
		t.Fatal(err)
	}
	if err := resolved.Validate(instance); err != nil {
		t.Errorf("%s: %v\n%s", what, err, raw)
	}
}

// TestOutputSchemasAcceptTheContractsExamples: the example of every message the tools
// answer with (events.Catalog, fully populated) matches the tool's output schema, as
// the REST API would send it.
func TestOutputSchemasAcceptTheContractsExamples(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range events.Catalog() {
		switch r := m.(type) {
		case events.DevicesIdentifyReply:
			validates(t, "identify_devices", api.Devices{DataAsOf: r.DataAsOf, Devices: r.Devices, People: r.People, Source: r.Source, Ambiguous: r.Ambiguous})
		case events.TopicsListReply:
			validates(t, "list_topics", api.Topics{Topics: r.Topics})
		case events.DiagnoseReply:
			validates(t, "diagnose", r.Diagnosis)
		case events.ExecutionReply:
			validates(t, "remediate", api.Execution{Execution: r.Execution, Replayed: r.Replayed, Existing: r.Existing})
		case events.ProactiveEventChanged:
			validates(t, "list_proactive_events", api.ProactiveEvents{Events: []events.ProactiveEvent{r.Event}, NextCursor: "17"})
		default:
			continue
		}
		seen[m.MessageHeader().Type] = true
	}
	if len(seen) != 5 {
		t.Errorf("checked %v, want an example of each of the 5 answers", seen)
	}
	// A schema refuses what the REST API never sends.
	resolved, err := schema[api.Execution]().Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := resolved.Validate(map[string]any{"id": 7}); err == nil {
		t.Error("an execution without its members validates, want a refusal")
	}
	// The schemas are what tools/list shows: objects with the REST members.
	for _, s := range []*jsonschema.Schema{schema[api.Devices](), schema[api.Diagnosis](), schema[api.Execution]()} {
		if s.Type != "object" || len(s.Properties) == 0 {
			t.Errorf("got %+v, want an object schema with properties", s)
		}
	}
}
