package topic

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

	"github.com/dexbridge/dexbridge/events"
)

// The statuses of a rule (events.RuleResult.Status).
const (
	Found        = "found"         // the rule is true: the problem is present
	Clear        = "clear"         // the rule is false
	NotEvaluated = "not_evaluated" // the rule could not be evaluated; Reason says why
)

// Outcome is the evaluation of a topic's rules over one device's fields, in the
// types a diagnosis carries.
type Outcome struct {
	Topic       string
	EvaluatedAt time.Time
	// Rules has one result per rule, in the topic file's order. Evidence holds the
	// values of the fields the rule reads, as the queries returned them (null for a
	// null value; a missing field is absent).
	Rules []events.RuleResult
	// Findings are the rules that were found, with the remediations each suggests.
	Findings []events.Finding
	// Remediations are those of the found rules (in rule order, each once), then the
	// topic's generic remediations. Params are the remote action's input values as
	// strings (the Remote Actions API takes strings); a param that could not be
	// computed is absent and Ready is false, NotReady says why.
	Remediations []events.SuggestedRemedy
	// Verdict and Reasons are set by Conclude.
	Verdict string
	Reasons []events.VerdictReason
}

// Evaluate evaluates every rule of the topic over fields (the merged rows of the
// topic's queries, keyed by fully qualified header name), with now as the time.
func (p *Program) Evaluate(fields map[string]any) Outcome {
	return p.EvaluateAt(fields, time.Now())
}

// EvaluateAt is Evaluate with the evaluation time given (the CEL variable now).
func (p *Program) EvaluateAt(fields map[string]any, now time.Time) Outcome {
	vars := p.activation(fields, now)
	out := Outcome{Topic: p.topic.ID, EvaluatedAt: now, Rules: make([]events.RuleResult, 0, len(p.rules)),
		Findings: []events.Finding{}, Remediations: []events.SuggestedRemedy{}}
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
		res := events.RuleResult{Rule: r.def.ID, Title: r.def.Title, Evidence: evidence(r.when.fields, fields)}
		v, reason := r.when.eval(fields, vars)
		switch {
		case reason != "":
			res.Status, res.Reason = NotEvaluated, reason
		case v.Type() != types.BoolType:
			res.Status, res.Reason = NotEvaluated, fmt.Sprintf("the rule yields %s, not a bool", describe(v))
		case v == types.True:
			res.Status = Found
			out.Findings = append(out.Findings, events.Finding{Rule: res.Rule, Title: res.Title, Evidence: res.Evidence,
				Remediations: slices.Clone(r.def.Remediations)})
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
func (r *remediation) suggest(fields map[string]any, vars map[string]any) events.SuggestedRemedy {
	s := events.SuggestedRemedy{ID: r.def.ID, Title: r.def.Title, RemoteAction: r.def.RemoteAction, Message: r.def.Message, Ready: true}
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
func (p *Program) activation(fields map[string]any, now time.Time) map[string]any {
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
