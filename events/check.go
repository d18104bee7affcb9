package events

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// The checks of the values requests carry. The ingress runs them before it asks a
// worker, and the worker runs them again, since NATS is not only the ingress's: both
// call the functions below, so both accept the same set. None admits NQL wildcards
// (*), control characters or subject tokens (. > *) where a value may become one.

// Bounds of a trigger request.
const (
	MaxParams            = 32
	MaxParamValue        = 4096
	MaxReason            = 500 // the Remote Actions API's bound on triggerInfo.reason
	MaxExternalReference = 256
	MaxIdempotencyKey    = 255
)

var (
	// collectorUIDPattern is a collector UID.
	collectorUIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// deviceNamePattern is a device name: letters, digits, spaces and ._'-.
	deviceNamePattern = runesMatching(`^[\p{L}\p{N}][\p{L}\p{M}\p{N} ._'’-]*$`, 255)
	// idPattern is a topic id, and a remediation id.
	idPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	// nqlIDPattern is Nexthink's NQL id of a remote action or a saved query.
	nqlIDPattern = regexp.MustCompile(`^#[a-z0-9_]{2,255}$`)
	// executionIDPattern is dexbridge's execution id: only such ids become subject tokens.
	executionIDPattern = regexp.MustCompile(`^ex_[0-9a-f]{32}$`)
	// instancePattern is an instance name.
	instancePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	// paramNamePattern is a remote action's input name.
	paramNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	// idempotencyKeyPattern is a client's Idempotency-Key: printable ASCII, no spaces.
	idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
)

// boundedPattern matches whole values of at most max runes. The bound is checked
// apart from the expression: a counted repetition of a Unicode class ({0,255})
// compiles to a copy of the class per repetition, about 5 MB that every process
// holds for each such pattern, and 10 to 20 ms of its start.
type boundedPattern struct {
	re  *regexp.Regexp
	max int
}

func runesMatching(expr string, max int) boundedPattern {
	return boundedPattern{regexp.MustCompile(expr), max}
}

func (p boundedPattern) MatchString(s string) bool {
	return len(s) <= utf8.UTFMax*p.max && utf8.RuneCountInString(s) <= p.max && p.re.MatchString(s)
}

// identifierFormats are what each identification key accepts.
var identifierFormats = map[string]struct {
	re   interface{ MatchString(string) bool }
	want string
}{
	// jdoe, DOMAIN\jdoe, jdoe@corp.example.com, "Jane O'Neil".
	KeyUsername: {runesMatching(`^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._@\\'$+-]*$`, 256),
		"a user name of letters, digits, spaces and ._@\\'$+-"},
	KeyUPN: {regexp.MustCompile(`^[\p{L}\p{M}\p{N}._%+'-]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?)*$`),
		"a user principal name such as jdoe@example.com"},
	KeyEmail: {regexp.MustCompile(`^[\p{L}\p{M}\p{N}._%+'-]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?)+$`),
		"an e-mail address such as jdoe@example.com"},
	KeySID: {regexp.MustCompile(`^[Ss]-1-[0-9]{1,14}(-[0-9]{1,10}){1,15}$`),
		"a security identifier such as S-1-5-21-1004336348-1177238915-682003330-1001"},
	KeyDeviceName:   {deviceNamePattern, "a device name of letters, digits, spaces and ._'-"},
	KeyCollectorUID: {collectorUIDPattern, "a collector UID such as 1f5209c4-0166-4765-b4fa-29984d51deb1"},
}

// IsCollectorUID reports whether s is a collector UID (else a device name is meant).
func IsCollectorUID(s string) bool { return collectorUIDPattern.MatchString(s) }

// ValidExecutionID reports whether id can be an execution's id.
func ValidExecutionID(id string) bool { return executionIDPattern.MatchString(id) }

// ValidQueryID reports whether id can be a saved query's NQL id.
func ValidQueryID(id string) bool { return nqlIDPattern.MatchString(id) }

// CheckIdentifier checks an identification key and the format of its value.
func CheckIdentifier(key, value string) error {
	f, ok := identifierFormats[key]
	if !ok {
		return problem.InvalidField("key", "unknown identification key %q", key)
	}
	if !f.re.MatchString(value) {
		return problem.InvalidField(key, "want %s", f.want)
	}
	if key == KeyUsername {
		return checkUsernameForm(value)
	}
	return nil
}

// CheckDevice checks a device name or collector UID.
func CheckDevice(d string) error {
	if d == "" {
		return problem.InvalidField("device", "a device name or collector UID is required")
	}
	if !deviceNamePattern.MatchString(d) && !collectorUIDPattern.MatchString(d) {
		return problem.InvalidField("device", "want a device name (letters, digits, spaces and ._'-) or a collector UID")
	}
	return nil
}

// CheckTopicID checks a topic id.
func CheckTopicID(id string) error {
	if !idPattern.MatchString(id) {
		return problem.InvalidField("topic", "a topic id is 1 to 64 characters of a-z, 0-9 and _")
	}
	return nil
}

// CheckInstance checks an instance name ("" is none).
func CheckInstance(name string) error {
	if name != "" && !instancePattern.MatchString(name) {
		return problem.InvalidField("instance", "want an instance name")
	}
	return nil
}

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

// CheckParams checks the shape of a trigger's params: names and sizes, not what the
// remote action declares (the remote action manager checks that).
func CheckParams(params map[string]string) error {
	if len(params) > MaxParams {
		return problem.InvalidField("params", "at most %d params", MaxParams)
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if !paramNamePattern.MatchString(name) {
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
	if k != "" && !idempotencyKeyPattern.MatchString(k) {
		return problem.InvalidField("Idempotency-Key", "want 1 to %d printable ASCII characters without spaces", MaxIdempotencyKey)
	}
	return nil
}

// Validate checks what a trigger asks for, before anything is looked up.
func (r ActionsTriggerRequest) Validate() error {
	if !nqlIDPattern.MatchString(r.RemoteAction) {
		return problem.InvalidField("remote_action", "want a remote action's NQL id such as #repair_onedrive")
	}
	if err := CheckDevice(r.Device); err != nil {
		return err
	}
	if err := CheckParams(r.Params); err != nil {
		return err
	}
	if err := CheckText("reason", r.Reason, MaxReason); err != nil {
		return err
	}
	if err := CheckText("external_reference", r.ExternalReference, MaxExternalReference); err != nil {
		return err
	}
	return CheckIdempotencyKey(r.IdempotencyKey)
}

// Validate checks a topic remediation request.
func (r ActionsRemediateRequest) Validate() error {
	if err := CheckTopicID(r.Topic); err != nil {
		return err
	}
	if !idPattern.MatchString(r.Remediation) {
		return problem.InvalidField("remediation", "a remediation id is 1 to 64 characters of a-z, 0-9 and _")
	}
	if err := CheckDevice(r.Device); err != nil {
		return err
	}
	if err := CheckText("reason", r.Reason, MaxReason); err != nil {
		return err
	}
	return CheckIdempotencyKey(r.IdempotencyKey)
}

// Validate checks the key, the format of its value and the instance's name.
func (r DevicesIdentifyRequest) Validate() error {
	if err := CheckIdentifier(r.Key, r.Value); err != nil {
		return err
	}
	return CheckInstance(r.Instance)
}

// Validate checks the device asked for and the instance's name.
func (r DevicesGetRequest) Validate() error {
	if err := CheckDevice(r.Device); err != nil {
		return err
	}
	return CheckInstance(r.Instance)
}

// Validate checks the topic asked for.
func (r TopicsGetRequest) Validate() error { return CheckTopicID(r.Topic) }

// Validate checks the topic and the device of a diagnosis.
func (r DiagnoseRequest) Validate() error {
	if err := CheckTopicID(r.Topic); err != nil {
		return err
	}
	return CheckDevice(r.Device)
}

// Validate checks the query id and the instance of a saved query's run; its
// parameters are checked against what the query takes.
func (r NQLRequest) Validate() error {
	if !nqlIDPattern.MatchString(r.QueryID) {
		return problem.InvalidField("query_id", "a saved query id is # and 2 to 255 characters of a-z, 0-9 and _")
	}
	return CheckInstance(r.Instance)
}

// Validate checks the instance asked for ("" is every one).
func (r DiscoveryRunRequest) Validate() error { return CheckInstance(r.Instance) }
