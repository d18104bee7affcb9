package remoteactions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// Bounds of a trigger request. The ingress checks the same before it asks a worker;
// the worker checks again, since NATS is not only the ingress's.
const (
	MaxParams            = 32
	MaxParamValue        = 4096
	MaxReason            = nexthink.MaxTriggerReasonRune // triggerInfo.reason
	MaxExternalReference = 256
	MaxIdempotencyKey    = 255
)

var (
	// RemoteActionIDRE is Nexthink's NQL id of a remote action.
	RemoteActionIDRE = regexp.MustCompile(`^#[a-z0-9_]{2,255}$`)
	// ExecutionIDRE is dexbridge's execution id: only such ids become subject tokens.
	ExecutionIDRE = regexp.MustCompile(`^ex_[0-9a-f]{32}$`)
	// ParamNameRE is an input name.
	ParamNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	// IdempotencyKeyRE is a client's Idempotency-Key: printable ASCII, no spaces.
	IdempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
	// DeviceRE is a device name or a collector UID, as identification accepts them.
	DeviceRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{M}\p{N} ._'’-]{0,254}$`)
	uuidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	topicRE  = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

// CheckText refuses a free text (reason, external reference) that is too long or
// holds control characters.
func CheckText(field, s string, maxRunes int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		return problem.InvalidField(field, "at most %d characters", maxRunes)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return problem.InvalidField(field, "control characters are not allowed")
	}
	return nil
}

// CheckTrigger checks what a trigger request asks for, before anything is looked up.
func CheckTrigger(req events.ActionsTriggerRequest) error {
	if !RemoteActionIDRE.MatchString(req.RemoteAction) {
		return problem.InvalidField("remote_action", "want a remote action's NQL id such as #repair_onedrive")
	}
	if err := CheckDevice(req.Device); err != nil {
		return err
	}
	if err := CheckParams(req.Params); err != nil {
		return err
	}
	if err := CheckText("reason", req.Reason, MaxReason); err != nil {
		return err
	}
	if err := CheckText("external_reference", req.ExternalReference, MaxExternalReference); err != nil {
		return err
	}
	return CheckIdempotencyKey(req.IdempotencyKey)
}

// CheckRemediate checks a topic remediation request.
func CheckRemediate(req events.ActionsRemediateRequest) error {
	if !topicRE.MatchString(req.Topic) {
		return problem.InvalidField("topic", "a topic id is 1 to 64 characters of a-z, 0-9 and _")
	}
	if !topicRE.MatchString(req.Remediation) {
		return problem.InvalidField("remediation", "a remediation id is 1 to 64 characters of a-z, 0-9 and _")
	}
	if err := CheckDevice(req.Device); err != nil {
		return err
	}
	if err := CheckText("reason", req.Reason, MaxReason); err != nil {
		return err
	}
	return CheckIdempotencyKey(req.IdempotencyKey)
}

// CheckDevice checks a device name or collector UID.
func CheckDevice(d string) error {
	if d == "" {
		return problem.InvalidField("device", "a device name or collector UID is required")
	}
	if !DeviceRE.MatchString(d) && !uuidRE.MatchString(d) {
		return problem.InvalidField("device", "want a device name (letters, digits, spaces and ._'-) or a collector UID")
	}
	return nil
}

// CheckParams checks the shape of params: names and sizes, not what the remote
// action declares (checkInputs does that).
func CheckParams(params map[string]string) error {
	if len(params) > MaxParams {
		return problem.InvalidField("params", "at most %d params", MaxParams)
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if !ParamNameRE.MatchString(name) {
			return problem.InvalidField("params", "param name %q: want letters, digits and _.-", name)
		}
		if err := CheckText("params."+name, params[name], MaxParamValue); err != nil {
			return err
		}
	}
	return nil
}

// CheckIdempotencyKey checks an Idempotency-Key ("" is none).
func CheckIdempotencyKey(k string) error {
	if k != "" && !IdempotencyKeyRE.MatchString(k) {
		return problem.InvalidField("Idempotency-Key", "want 1 to %d printable ASCII characters without spaces", MaxIdempotencyKey)
	}
	return nil
}

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
