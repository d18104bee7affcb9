package mcpserver

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// FuzzDecodeArgs: whatever the arguments, decodeArgs accepts them into the tool's
// type or returns a client problem (never internal, never a panic), and what it
// accepts encodes back to the arguments' known members only.
func FuzzDecodeArgs(f *testing.F) {
	for _, seed := range []string{
		`{"topic":"outlook","device":"PC-1","refresh":true}`, `{}`, `null`, ``, `[]`, `"x"`, `7`,
		`{"topic":7}`, `{"topic":"a"}{"topic":"b"}`, "{\"device\":\"\xff\"}", `{"sql":"drop"}`,
		`{"wait_seconds":1e400}`, `{"wait_seconds":"5"}`, `{"reason":null}`, `{"topic":"outlook",}`,
		`{"remediation":"set_outlook_online","device":"PC-1","reason":"r","idempotency_key":"k","force":false}`,
		`{"Topic":"case"}`, `{"device":["a"]}`, `{"limit":-1,"after":"0"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, into := range []any{&diagnoseArgs{}, &remediateArgs{}, &executionArgs{}, &identifyArgs{}, &proactiveArgs{}, &noArgs{}} {
			err := decodeArgs(json.RawMessage(raw), into)
			if err == nil {
				if _, err := json.Marshal(into); err != nil {
					t.Fatalf("accepted %q into %T, which does not encode: %v", raw, into, err)
				}
				continue
			}
			var p *problem.Error
			if !errors.As(err, &p) {
				t.Fatalf("unclassified error %v for %q", err, raw)
			}
			if s := p.Code.Status(); s < 400 || s >= 500 {
				t.Fatalf("got %s (%d) for %q into %T, want a client error", p.Code, s, raw, into)
			}
		}
	})
}

func TestDecodeArgsNamesTheArgument(t *testing.T) {
	tests := []struct {
		raw, code, field string
	}{
		{`{"topic":7,"device":"PC-1"}`, "invalid_request", "topic"},
		{`{"topic":"outlook","colour":"blue"}`, "invalid_request", "colour"},
		{`{"topic":"outlook","refresh":"yes"}`, "invalid_request", "refresh"},
		{`["outlook"]`, "invalid_request", ""},
		{`{"topic":"outlook"} {}`, "invalid_request", ""},
		{"{\"topic\":\"\xff\"}", "invalid_request", ""},
		{`{"device":"` + string(make([]byte, maxArgs)) + `"}`, "payload_too_large", ""},
	}
	for _, tt := range tests {
		var into diagnoseArgs
		p := problem.From(decodeArgs(json.RawMessage(tt.raw), &into))
		if p == nil || string(p.Code) != tt.code || p.Field != tt.field {
			t.Errorf("%.40q: got %v, want %s naming %q", tt.raw, p, tt.code, tt.field)
		}
	}
	var into diagnoseArgs
	if err := decodeArgs(json.RawMessage(`{"topic":"outlook","device":"PC-1","refresh":true}`), &into); err != nil ||
		into.Topic != "outlook" || into.Device != "PC-1" || !into.Refresh {
		t.Errorf("got %+v %v, want the arguments decoded into the embedded REST body", into, err)
	}
}
