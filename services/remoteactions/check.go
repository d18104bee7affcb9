package remoteactions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// spec is what a remote action accepts, from the tenant's details (authoritative) or,
// when the tenant cannot say, from the allow-list.
type spec struct {
	source    string // "tenant" or "allow-list"
	inputs    map[string]specInput
	platforms func(platform string) bool
}

type specInput struct {
	required bool
	options  []string // when set and custom values are not allowed, the only values
}

// specOf combines the allow-list entry and, when there is one, the tenant's details:
// the tenant says which inputs exist, which values they take and which platforms
// the scripts run on; the allow-list says which inputs dexbridge requires and which
// platforms it allows (both must allow a platform).
func specOf(a *allowlist.RemoteAction, details *nexthink.RemoteAction) spec {
	s := spec{source: "allow-list", inputs: map[string]specInput{}, platforms: a.SupportsPlatform}
	required := map[string]bool{}
	for _, in := range a.Inputs {
		required[in.Name] = in.Required
	}
	if details == nil {
		for _, in := range a.Inputs {
			s.inputs[in.Name] = specInput{required: in.Required}
		}
		return s
	}
	s.source = "tenant"
	for _, in := range details.ScriptInfo.Inputs {
		name := in.ID
		if name == "" {
			name = in.Name
		}
		si := specInput{required: required[name]}
		if !in.AllowCustomValue && len(in.Options) > 0 {
			si.options = in.Options
		}
		s.inputs[name] = si
	}
	script := details.ScriptInfo
	s.platforms = func(p string) bool {
		if !a.SupportsPlatform(p) {
			return false
		}
		switch p {
		case "Windows":
			return script.HasScriptWindows
		case "macOS":
			return script.HasScriptMacOs
		}
		return true
	}
	return s
}

// checkInputs checks params against the declared inputs: an unknown input, a missing
// required one or a value outside an input's options is a 400 naming the input.
func checkInputs(id string, s spec, params map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(params)) {
		in, ok := s.inputs[name]
		if !ok {
			return problem.InvalidField("params."+name, "remote action %s has no input %q (it declares %s)", id, name, inputList(s))
		}
		if len(in.options) > 0 && !slices.Contains(in.options, params[name]) {
			return problem.InvalidField("params."+name, "input %s of %s takes one of %s", name, id, strings.Join(in.options, ", "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.inputs)) {
		if _, ok := params[name]; s.inputs[name].required && !ok {
			return problem.InvalidField("params."+name, "remote action %s requires input %s", id, name)
		}
	}
	return nil
}

func inputList(s spec) string {
	if len(s.inputs) == 0 {
		return "no inputs"
	}
	return strings.Join(slices.Sorted(maps.Keys(s.inputs)), ", ")
}

// checkPlatform refuses a device whose platform the remote action does not run on.
// An unknown platform is let through: the tenant decides.
func checkPlatform(id string, s spec, platform string) error {
	if platform == "" || s.platforms(platform) {
		return nil
	}
	return problem.New(problem.Unprocessable, "remote action %s does not run on %s devices", id, platform)
}

// requestHash identifies what a request asks for, to tell a retry from another
// request that reuses its Idempotency-Key. How long the caller waits is not part of
// it. encoding/json sorts map keys, so the encoding is canonical.
func requestHash(kind string, v any) string {
	raw, _ := json.Marshal(v) // structs of strings and string maps always encode
	sum := sha256.Sum256(append([]byte(kind+"\x00"), raw...))
	return hex.EncodeToString(sum[:])
}
