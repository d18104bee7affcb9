package events_test

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/schemas"
)

// TestCatalogMatchesSchemas keeps the Go messages and schemas/events in step: every
// message type has a schema its example validates against, and every schema file
// names a message type.
func TestCatalogMatchesSchemas(t *testing.T) {
	types := map[string]bool{}
	for _, m := range events.Catalog() {
		typ := m.MessageHeader().Type
		if types[typ] {
			t.Errorf("type %s listed twice in the catalog", typ)
		}
		types[typ] = true
		s, err := schemas.Load("events/" + typ + ".json")
		if err != nil {
			t.Errorf("type %s: %v", typ, err)
			continue
		}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(doc); err != nil {
			t.Errorf("type %s: example does not match its schema: %v\n%s", typ, err, raw)
		}
	}
	files, err := fs.Glob(schemas.FS(), "events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		typ := strings.TrimSuffix(strings.TrimPrefix(f, "events/"), ".json")
		if !types[typ] {
			t.Errorf("schema %s has no message type in events.Catalog", f)
		}
	}
}

// TestSchemasRejectWrongMessages shows the schemas are not vacuous.
func TestSchemasRejectWrongMessages(t *testing.T) {
	s, err := schemas.Load("events/" + events.TypeTopicsGetRequest + ".json")
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		`{}`,
		`{"type":"dexbridge.topics.v1.get_request","id":"1","time":"2026-01-01T00:00:00Z"}`,
		`{"type":"dexbridge.topics.v1.list_request","id":"1","time":"2026-01-01T00:00:00Z","topic":"x"}`,
		`{"type":"dexbridge.topics.v1.get_request","id":"","time":"2026-01-01T00:00:00Z","topic":"x"}`,
	}
	for _, b := range bad {
		var doc any
		if err := json.Unmarshal([]byte(b), &doc); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(doc); err == nil {
			t.Errorf("%s: got valid, want a violation", b)
		}
	}
}

var subjectShape = regexp.MustCompile(`^(req|evt|cmd)\.[a-z_]+\.[a-z_]+(\.[a-z_*>]+)*$`)

func TestSubjects(t *testing.T) {
	for _, name := range []string{
		events.TopicsList, events.TopicsGet, events.TopicsDiagnose, events.NQLExecute, events.NQLExport, events.TopicsReload,
		events.DevicesIdentify, events.DevicesGet, events.StatusGet, events.DiscoveryRun, events.DiscoveryFinished,
		events.ActionsList, events.ActionsTrigger, events.ActionsRemediate, events.ActionsGet, events.ActionsUpdated, events.ExecutionsList,
		events.WebhooksReceived, events.ProactiveChanged,
	} {
		if !subjectShape.MatchString(name) {
			t.Errorf("subject %q does not follow <req|evt|cmd>.<domain>.<verb>", name)
		}
	}
	s := events.NewSubjects("t1")
	if got, want := s.Of(events.TopicsGet), "t1.req.topics.get"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := s.Of("evt.remote_action.updated", "abc"), "t1.evt.remote_action.updated.abc"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := events.NewSubjects("").Stream("WEBHOOKS"), "DEXBRIDGE_WEBHOOKS"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
