package remoteactions

import (
	"testing"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func TestCheckInputs(t *testing.T) {
	allowed := &allowlist.RemoteAction{ID: "#a", Platforms: []string{"Windows"},
		Inputs: []allowlist.Input{{Name: "Names", Required: true}, {Name: "Mode"}}}
	tenant := &nexthink.RemoteAction{ID: "#a", ScriptInfo: nexthink.ScriptInfo{HasScriptWindows: true, Inputs: []nexthink.Input{
		{ID: "Names", AllowCustomValue: true}, {ID: "Mode", Options: []string{"fast", "full"}}, {ID: "Extra", AllowCustomValue: true}}}}
	tests := []struct {
		name    string
		details *nexthink.RemoteAction
		params  map[string]string
		field   string // "" for accepted
	}{
		{"tenant: all good", tenant, map[string]string{"Names": "x", "Mode": "fast"}, ""},
		{"tenant: an input only the tenant declares", tenant, map[string]string{"Names": "x", "Extra": "y"}, ""},
		{"tenant: unknown input", tenant, map[string]string{"Names": "x", "Nope": "y"}, "params.Nope"},
		{"tenant: required by the allow-list", tenant, map[string]string{"Mode": "full"}, "params.Names"},
		{"tenant: outside the options", tenant, map[string]string{"Names": "x", "Mode": "slow"}, "params.Mode"},
		{"allow-list: all good", nil, map[string]string{"Names": "x"}, ""},
		{"allow-list: undeclared", nil, map[string]string{"Names": "x", "Extra": "y"}, "params.Extra"},
		{"allow-list: missing", nil, nil, "params.Names"},
	}
	for _, tt := range tests {
		err := checkInputs("#a", specOf(allowed, tt.details), tt.params)
		got := ""
		if err != nil {
			p := problem.From(err)
			if p.Code != problem.Invalid {
				t.Errorf("%s: got code %s, want invalid_request", tt.name, p.Code)
			}
			got = p.Field
		}
		if got != tt.field {
			t.Errorf("%s: got field %q (%v), want %q", tt.name, got, err, tt.field)
		}
	}
}

func TestCheckPlatform(t *testing.T) {
	allowed := &allowlist.RemoteAction{ID: "#a", Platforms: []string{"Windows", "macOS"}}
	windowsOnly := &nexthink.RemoteAction{ScriptInfo: nexthink.ScriptInfo{HasScriptWindows: true}}
	tests := []struct {
		name     string
		details  *nexthink.RemoteAction
		platform string
		ok       bool
	}{
		{"allow-list, Windows", nil, "Windows", true},
		{"allow-list, macOS", nil, "macOS", true},
		{"tenant has no macOS script", windowsOnly, "macOS", false},
		{"tenant, Windows", windowsOnly, "Windows", true},
		{"unknown platform: the tenant decides", windowsOnly, "", true},
	}
	for _, tt := range tests {
		err := checkPlatform("#a", specOf(allowed, tt.details), tt.platform)
		if (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && problem.From(err).Code != problem.Unprocessable {
			t.Errorf("%s: got %v, want unprocessable", tt.name, err)
		}
	}
	if err := checkPlatform("#b", specOf(&allowlist.RemoteAction{ID: "#b", Platforms: []string{"Windows"}}, nil), "macOS"); err == nil {
		t.Error("the allow-list's platforms are not enforced")
	}
}

// TestRequestHash: a retry is the same request whatever the order of its params;
// another reason is another request.
func TestRequestHash(t *testing.T) {
	a := requestHash("trigger", triggerHash{RemoteAction: "#a", Device: "d", Params: map[string]string{"x": "1", "y": "2"}})
	b := requestHash("trigger", triggerHash{RemoteAction: "#a", Device: "d", Params: map[string]string{"y": "2", "x": "1"}})
	c := requestHash("trigger", triggerHash{RemoteAction: "#a", Device: "d", Params: map[string]string{"x": "1", "y": "2"}, Reason: "r"})
	d := requestHash("remediate", triggerHash{RemoteAction: "#a", Device: "d", Params: map[string]string{"x": "1", "y": "2"}})
	if a != b {
		t.Error("the order of params changes the hash")
	}
	if a == c || a == d {
		t.Error("different requests share a hash")
	}
}
