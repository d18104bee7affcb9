package webhooks

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// Verdict is a diagnosis's verdict over the rules an alert of monitor m is about:
// problems_found when one of them found its problem, healthy when every one of them
// was evaluated and clear on data that was dated and fresh, inconclusive otherwise (a
// rule not evaluated, none, or data stale or missing).
func Verdict(d events.Diagnosis, m *webhookmap.Monitor) string {
	for _, f := range d.Findings {
		if m.Concerns(f.Rule) {
			return events.VerdictProblemsFound
		}
	}
	clear := 0
	for _, r := range d.Rules {
		if !m.Concerns(r.Rule) {
			continue
		}
		if r.Status != topic.Clear {
			return events.VerdictInconclusive
		}
		clear++
	}
	if clear == 0 || d.Stale {
		return events.VerdictInconclusive
	}
	for _, r := range d.VerdictReasons {
		if r.Code == events.ReasonNoData || r.Code == events.ReasonStaleData {
			return events.VerdictInconclusive
		}
	}
	return events.VerdictHealthy
}

// Runnable says whether a ready remediation can run on a device of a platform, and
// why not.
type Runnable func(r events.SuggestedRemedy, platform string) (ok bool, why string)

// RunsOn is the Runnable of an allow-list: a message runs anywhere; a remote action
// needs a known platform that the allow-list says it supports (any, without a list).
func RunsOn(actions *allowlist.List) Runnable {
	return func(r events.SuggestedRemedy, platform string) (bool, string) {
		switch {
		case r.RemoteAction == "":
			return true, ""
		case platform == "":
			return false, "cannot run: the device's platform is unknown"
		case actions == nil:
			return true, ""
		}
		a, ok := actions.Get(r.RemoteAction)
		if !ok {
			return false, "cannot run: " + r.RemoteAction + " is not in the remote-action allow-list"
		}
		if !a.SupportsPlatform(platform) {
			return false, "does not run on " + platform + " devices"
		}
		return true, ""
	}
}

// Assessment is what an event found out about its alert, and what follows from it.
type Assessment struct {
	Kind string // events.Assess*
	// Why explains Kind to an operator.
	Why string
	// Diagnosis is what the event carries of the diagnosis (nil when none ran).
	Diagnosis *events.ProactiveDiagnosis
	// Remediations are what the message may offer: when Kind is fix_available, the
	// ready remediations that can run on the device (remote actions, messages and
	// generic ones); when problem_confirmed, only the messages for the employee;
	// otherwise none.
	Remediations []events.SuggestedRemedy
	Findings     []string // titles of the problems found that the alert is about
	Fixes        []string // titles of the remote actions offered that address them
	// FindingRules and FixIDs are the ids of Findings and Fixes, to say them in
	// another language.
	FindingRules []string
	FixIDs       []string
}

// Assess decides what an event tells the employee, from the monitor's rule, the
// device's platform and its diagnosis (nil when none ran). A fix is offered only when
// the diagnosis found a problem the alert is about and a ready remediation of that
// problem, allowed by the rule, can run on the platform.
func Assess(m *webhookmap.Monitor, platform string, c *Checked, runs Runnable) Assessment {
	out := Assessment{Remediations: []events.SuggestedRemedy{}}
	switch {
	case m.Topic == "":
		out.Kind, out.Why = events.AssessReported, "the monitor has no topic to check"
		return out
	case c == nil:
		out.Kind, out.Why = events.AssessNotChecked, "no device to diagnose"
		return out
	case c.Diagnosis == nil:
		out.Kind, out.Why = events.AssessNotChecked, "the diagnosis failed: "+c.Error
		out.Diagnosis = &events.ProactiveDiagnosis{Topic: m.Topic, Findings: []events.ProactiveFinding{},
			Remediations: []events.SuggestedRemedy{}, Error: c.Error}
		return out
	}
	d := *c.Diagnosis
	out.Diagnosis = proactiveDiagnosis(d, Verdict(d, m))
	found := map[string]bool{}
	for _, f := range d.Findings {
		if m.Concerns(f.Rule) {
			found[f.Rule] = true
			out.Findings, out.FindingRules = append(out.Findings, f.Title), append(out.FindingRules, f.Rule)
		}
	}
	var offered, advice []events.SuggestedRemedy
	var refused []string
	for _, r := range d.Remediations {
		addresses := !r.Generic && (len(r.Rules) == 0 || slices.ContainsFunc(r.Rules, func(rule string) bool { return found[rule] }))
		if !m.Offers(r.ID) || (!addresses && !r.Generic) {
			continue
		}
		if !r.Ready {
			refused = append(refused, r.ID+" is not ready ("+r.NotReady+")")
			continue
		}
		if ok, why := runs(r, platform); !ok {
			refused = append(refused, r.ID+" "+why)
			continue
		}
		offered = append(offered, r)
		if r.RemoteAction == "" {
			advice = append(advice, r)
		} else if addresses {
			out.Fixes, out.FixIDs = append(out.Fixes, r.Title), append(out.FixIDs, r.ID)
		}
	}
	switch out.Diagnosis.Verdict {
	case events.VerdictProblemsFound:
		if len(out.Fixes) > 0 {
			out.Kind, out.Remediations = events.AssessFixAvailable, offered
			out.Why = "fix available: " + strings.Join(out.Fixes, ", ")
			return out
		}
		out.Kind, out.Remediations = events.AssessProblemConfirmed, orEmpty(advice)
		out.Why = "problem confirmed (" + strings.Join(slices.Sorted(maps.Keys(found)), ", ") + "); no remediation of it can run"
		if len(refused) > 0 {
			out.Why += ": " + strings.Join(refused, "; ")
		}
	case events.VerdictHealthy:
		out.Kind, out.Why = events.AssessHealthy, fmt.Sprintf("the %s diagnosis found nothing wrong", m.Topic)
	default:
		out.Kind, out.Why = events.AssessNotChecked, "the diagnosis was inconclusive: "+notEvaluated(d, m)
	}
	return out
}

// proactiveDiagnosis is what an event carries of a diagnosis.
func proactiveDiagnosis(d events.Diagnosis, verdict string) *events.ProactiveDiagnosis {
	out := &events.ProactiveDiagnosis{Topic: d.Topic, Source: d.Source, DataAsOf: d.DataAsOf, Verdict: verdict,
		Findings: []events.ProactiveFinding{}, Rules: d.Rules, Remediations: orEmpty(d.Remediations)}
	for _, f := range d.Findings {
		out.Findings = append(out.Findings, events.ProactiveFinding{Rule: f.Rule, Title: f.Title, Evidence: f.Evidence})
	}
	return out
}

// notEvaluated lists the rules of the alert that were not evaluated, and why.
func notEvaluated(d events.Diagnosis, m *webhookmap.Monitor) string {
	var out []string
	for _, r := range d.Rules {
		if m.Concerns(r.Rule) && r.Status != topic.Clear {
			out = append(out, r.Rule+" "+strings.TrimSpace(r.Status+" "+r.Reason))
		}
	}
	for _, r := range d.VerdictReasons {
		if r.Code == events.ReasonNoData || r.Code == events.ReasonStaleData {
			out = append(out, r.Message)
		}
	}
	if len(out) == 0 {
		return "no rule was evaluated"
	}
	return strings.Join(out, "; ")
}

func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
