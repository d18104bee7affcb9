package topic

import (
	"fmt"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
)

// Data is what a verdict needs to know of the data the rules read.
type Data struct {
	// AsOf is the time of the oldest value, nil when no value could be dated.
	AsOf *time.Time
	// Stale is true when AsOf is older than MaxAge.
	Stale  bool
	MaxAge time.Duration
	// Undated are values that could not be dated; Empty the queries that returned no
	// row for the device.
	Undated []string
	Empty   []string
}

// notReadyHealthy is why a generic remediation is not ready on a healthy device.
const notReadyHealthy = "the diagnosis found the device healthy: a generic remediation is offered for when a problem is found or cannot be ruled out"

// Conclude gives o its verdict over data d: problems_found when a rule found its
// problem; healthy when every rule was evaluated and clear on data that is dated and
// not stale; inconclusive otherwise. Reasons say what keeps it from being healthy.
// On a healthy device the generic remediations are not ready.
func (o *Outcome) Conclude(d Data) {
	var reasons []events.VerdictReason
	var skipped []string
	for _, r := range o.Rules {
		if r.Status == NotEvaluated {
			skipped = append(skipped, r.Rule)
		}
	}
	if len(o.Rules) == 0 {
		reasons = append(reasons, events.VerdictReason{Code: events.ReasonNoRules, Message: "the topic has no rules to evaluate"})
	}
	if len(skipped) > 0 {
		reasons = append(reasons, events.VerdictReason{Code: events.ReasonRulesNotEvaluated, Rules: skipped,
			Message: fmt.Sprintf("%d of %d rules could not be evaluated (%s); each rule's reason says why", len(skipped), len(o.Rules), strings.Join(skipped, ", "))})
		if len(d.Empty) > 0 {
			reasons = append(reasons, events.VerdictReason{Code: events.ReasonNoData, Queries: d.Empty,
				Message: fmt.Sprintf("%s returned no row for the device: Nexthink has no data for it there (a query may select only devices seen recently)", strings.Join(d.Empty, ", "))})
		}
	}
	switch {
	case len(d.Undated) > 0:
		reasons = append(reasons, events.VerdictReason{Code: events.ReasonNoData,
			Message: "Nexthink gave no time for " + strings.Join(d.Undated, ", ") + ": how old the data is cannot be told"})
	case d.AsOf == nil && (len(skipped) == 0 || len(d.Empty) == 0):
		reasons = append(reasons, events.VerdictReason{Code: events.ReasonNoData, Message: "Nexthink returned no data for the device"})
	}
	if d.Stale && d.AsOf != nil {
		reasons = append(reasons, events.VerdictReason{Code: events.ReasonStaleData,
			Message: fmt.Sprintf("the data is from %s, older than the topic's maximum age of %s", d.AsOf.UTC().Format(time.RFC3339), formatAge(d.MaxAge))})
	}
	switch {
	case len(o.Findings) > 0:
		o.Verdict = events.VerdictProblemsFound
	case len(reasons) == 0:
		o.Verdict = events.VerdictHealthy
	default:
		o.Verdict = events.VerdictInconclusive
	}
	o.Reasons = reasons
	if o.Verdict != events.VerdictHealthy {
		return
	}
	for i := range o.Remediations {
		if s := &o.Remediations[i]; s.Generic && len(s.Rules) == 0 {
			s.Ready, s.NotReady = false, notReadyHealthy
		}
	}
}

// formatAge writes a duration as a person would: 24h, 7d, 90m.
func formatAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
