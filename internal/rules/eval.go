package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Status is the outcome of one rule.
type Status string

// Rule statuses.
const (
	Found        Status = "found"         // the rule is true: the problem is present
	Clear        Status = "clear"         // the rule is false
	NotEvaluated Status = "not_evaluated" // the rule could not be evaluated; Reason says why
)

// Outcome is the evaluation of a topic's rules over one device's fields.
type Outcome struct {
	Topic       string    `json:"topic"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Rules has one result per rule, in the topic file's order.
	Rules []RuleResult `json:"rules"`
	// Remediations are those of the found rules (in rule order, each once), then the
	// topic's generic remediations.
	Remediations []Suggestion `json:"remediations"`
}

// Findings returns the results of the rules that were found.
func (o Outcome) Findings() []RuleResult {
	var out []RuleResult
	for _, r := range o.Rules {
		if r.Status == Found {
			out = append(out, r)
		}
	}
	return out
}

// RuleResult is the result of one rule.
type RuleResult struct {
	Rule   string `json:"rule"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Reason says why the rule was not evaluated.
	Reason string `json:"reason,omitempty"`
	// Evidence holds the values of the fields the rule reads, as the queries returned
	// them (null for a null value; a missing field is absent).
	Evidence map[string]any `json:"evidence"`
	// Remediations are the ids of the remediations the rule suggests, when found.
	Remediations []string `json:"remediations,omitempty"`
}

// Suggestion is a remediation suggested by an Outcome: a remote action with its
// params, or a message for the employee.
type Suggestion struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	RemoteAction string `json:"remote_action,omitempty"`
	// Params are the remote action's input values, as strings (the Remote Actions API
	// takes strings). A param that could not be computed is absent and Ready is false.
	Params map[string]string `json:"params,omitempty"`
	Ready  bool              `json:"ready"`
	// NotReady says why a remote action cannot run as suggested.
	NotReady string `json:"not_ready,omitempty"`
	Message  string `json:"message,omitempty"`
	// Rules are the found rules that suggest it (none for a generic remediation that
	// no found rule suggests).
	Rules []string `json:"rules,omitempty"`
	// Generic is true for the topic's generic remediations, offered whatever the
	// findings ("Additional generic remediation" in the seed).
	Generic bool `json:"generic,omitempty"`
}

// Evaluate evaluates every rule of the topic over fields (the merged rows of the
// topic's queries, keyed by fully qualified header name), with now as the time.
func (p *TopicProgram) Evaluate(fields map[string]any) Outcome {
	return p.EvaluateAt(fields, time.Now())
}

// EvaluateAt is Evaluate with the evaluation time given (the CEL variable now).
func (p *TopicProgram) EvaluateAt(fields map[string]any, now time.Time) Outcome {
	vars := p.activation(fields, now)
	out := Outcome{Topic: p.topic.ID, EvaluatedAt: now, Rules: make([]RuleResult, 0, len(p.rules)), Remediations: []Suggestion{}}
	index := map[string]int{}
	suggest := func(id, ruleID string, generic bool) {
		if i, ok := index[id]; ok {
			s := &out.Remediations[i]
			if ruleID != "" {
				s.Rules = append(s.Rules, ruleID)
			}
			s.Generic = s.Generic || generic
			return
		}
		s := p.remediations[id].suggest(fields, vars)
		if ruleID != "" {
			s.Rules = []string{ruleID}
		}
		s.Generic = generic
		index[id] = len(out.Remediations)
		out.Remediations = append(out.Remediations, s)
	}
	for _, r := range p.rules {
		res := RuleResult{Rule: r.def.ID, Title: r.def.Title, Evidence: evidence(r.when.fields, fields)}
		v, reason := r.when.eval(fields, vars)
		switch {
		case reason != "":
			res.Status, res.Reason = NotEvaluated, reason
		case v.Type() != types.BoolType:
			res.Status, res.Reason = NotEvaluated, fmt.Sprintf("the rule yields %s, not a bool", describe(v))
		case v == types.True:
			res.Status = Found
			res.Remediations = slices.Clone(r.def.Remediations)
			for _, id := range r.def.Remediations {
				suggest(id, r.def.ID, false)
			}
		default:
			res.Status = Clear
		}
		out.Rules = append(out.Rules, res)
	}
	for _, id := range p.topic.GenericRemediations {
		suggest(id, "", true)
	}
	return out
}

// suggest computes the suggestion of a remediation over fields.
func (r *remediation) suggest(fields map[string]any, vars map[string]any) Suggestion {
	s := Suggestion{ID: r.def.ID, Title: r.def.Title, RemoteAction: r.def.RemoteAction, Message: r.def.Message, Ready: true}
	var why []string
	for _, prm := range r.params {
		v, reason := prm.expr.eval(fields, vars)
		if reason == "" {
			var str string
			var err error
			if str, err = paramString(v); err == nil {
				if s.Params == nil {
					s.Params = map[string]string{}
				}
				s.Params[prm.name] = str
				continue
			}
			reason = err.Error()
		}
		why = append(why, prm.name+": "+reason)
	}
	if len(why) > 0 {
		s.Ready, s.NotReady = false, strings.Join(why, "; ")
	}
	return s
}

// eval evaluates e, or says why it cannot: a field it reads is missing or null, or
// evaluation failed.
func (e *expression) eval(fields map[string]any, vars map[string]any) (ref.Val, string) {
	var missing, null []string
	for _, f := range e.fields {
		v, ok := fields[f]
		switch {
		case !ok:
			missing = append(missing, f)
		case v == nil:
			null = append(null, f)
		}
	}
	var why []string
	if len(missing) > 0 {
		why = append(why, "no value for "+strings.Join(missing, ", ")+" in the query results")
	}
	if len(null) > 0 {
		verb := " is null (no data)"
		if len(null) > 1 {
			verb = " are null (no data)"
		}
		why = append(why, strings.Join(null, ", ")+verb)
	}
	if len(why) > 0 {
		return nil, strings.Join(why, "; ")
	}
	v, _, err := e.prg.Eval(vars)
	if err != nil {
		return nil, "evaluation failed: " + err.Error()
	}
	return v, ""
}

// activation binds the CEL variables: every declared field (normalised), fields and
// now.
func (p *TopicProgram) activation(fields map[string]any, now time.Time) map[string]any {
	all := make(map[string]any, len(fields))
	vars := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		n := normalise(v)
		all[k] = n
		if !notDeclarable[k] {
			vars[k] = n
		}
	}
	vars[fieldsVar] = all
	vars[nowVar] = now
	return vars
}

// normalise turns a field value into what rules see: every number a float64 (so that
// int and double fields add up and compare), json.Number included; strings, bools and
// times unchanged; lists and maps normalised element by element.
func normalise(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	}
	return v
}

// evidence picks the values of names from fields, as given.
func evidence(names []string, fields map[string]any) map[string]any {
	ev := make(map[string]any, len(names))
	for _, n := range names {
		if v, ok := fields[n]; ok {
			ev[n] = v
		}
	}
	return ev
}

// paramString renders a param value as the string the Remote Actions API takes:
// strings as they are, whole doubles without a decimal point, bools as true/false,
// timestamps in RFC 3339. Lists, maps and null are refused.
func paramString(v ref.Val) (string, error) {
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Bool:
		return strconv.FormatBool(bool(x)), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Double:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10), nil
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case types.Timestamp:
		return x.UTC().Format(time.RFC3339), nil
	case types.Duration:
		return x.Duration.String(), nil
	}
	return "", fmt.Errorf("yields %s, want a string, number or bool (build a string, e.g. with join)", describe(v))
}

// describe names the type of a CEL value for messages.
func describe(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return "a " + v.Type().TypeName()
}
