package topic_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/topic"
)

func TestVerdict(t *testing.T) {
	fresh := now.Add(-2 * time.Hour)
	old := now.Add(-72 * time.Hour)
	tests := []struct {
		name    string
		topic   string
		set     map[string]any
		del     []string
		data    topic.Data
		want    string
		reasons []string // codes, in order
		// generic is whether the topic's generic remediation is ready.
		generic bool
	}{
		{"clear on fresh data", "outlook", nil, nil, topic.Data{AsOf: &fresh}, events.VerdictHealthy, nil, false},
		{"a finding", "outlook", map[string]any{plugins: `["Grammarly"]`}, nil, topic.Data{AsOf: &fresh}, events.VerdictProblemsFound, nil, true},
		{"a finding on stale data", "outlook", map[string]any{plugins: `["Grammarly"]`}, nil, topic.Data{AsOf: &old, Stale: true, MaxAge: 24 * time.Hour},
			events.VerdictProblemsFound, []string{events.ReasonStaleData}, true},
		{"clear on stale data", "outlook", nil, nil, topic.Data{AsOf: &old, Stale: true, MaxAge: 24 * time.Hour},
			events.VerdictInconclusive, []string{events.ReasonStaleData}, true},
		{"a rule not evaluated", "outlook", nil, []string{plugins}, topic.Data{AsOf: &fresh},
			events.VerdictInconclusive, []string{events.ReasonRulesNotEvaluated}, true},
		{"a query without a row", "slow_pc", nil, []string{freeSpace, bootDays, outdated, highCount, gpoApplied, gpoDC},
			topic.Data{AsOf: &old, Stale: true, MaxAge: 24 * time.Hour, Empty: []string{"#diagnose_slow_pc_issues"}},
			events.VerdictInconclusive, []string{events.ReasonRulesNotEvaluated, events.ReasonNoData, events.ReasonStaleData}, true},
		{"no data at all", "onedrive", nil, []string{uid, name, oneDrive}, topic.Data{Empty: []string{"#diagnose_onedrive_issues"}},
			events.VerdictInconclusive, []string{events.ReasonRulesNotEvaluated, events.ReasonNoData}, true},
		{"clear but undated", "outlook", nil, nil, topic.Data{AsOf: &fresh, Undated: []string{plugins}},
			events.VerdictInconclusive, []string{events.ReasonNoData}, true},
		{"clear and nothing dated", "outlook", nil, nil, topic.Data{},
			events.VerdictInconclusive, []string{events.ReasonNoData}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := program(t, shipped(t), tt.topic)
			fields := healthy(tt.topic)
			for k, v := range tt.set {
				fields[k] = v
			}
			for _, k := range tt.del {
				delete(fields, k)
			}
			o := p.EvaluateAt(fields, now)
			o.Conclude(tt.data)
			if o.Verdict != tt.want {
				t.Errorf("verdict: got %s, want %s (reasons %+v)", o.Verdict, tt.want, o.Reasons)
			}
			var codes []string
			for _, r := range o.Reasons {
				codes = append(codes, r.Code)
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Code)
				}
			}
			if !slices.Equal(codes, tt.reasons) {
				t.Errorf("reasons: got %v, want %v (%+v)", codes, tt.reasons, o.Reasons)
			}
			// The properties every verdict keeps.
			switch o.Verdict {
			case events.VerdictProblemsFound:
				if len(o.Findings) == 0 {
					t.Error("problems_found without a finding")
				}
			case events.VerdictHealthy:
				if len(o.Findings) > 0 || len(o.Reasons) > 0 || tt.data.AsOf == nil || tt.data.Stale {
					t.Errorf("healthy with findings %v, reasons %v, data %+v", o.Findings, o.Reasons, tt.data)
				}
				for _, r := range o.Rules {
					if r.Status != topic.Clear {
						t.Errorf("healthy with rule %s %s", r.Rule, r.Status)
					}
				}
			case events.VerdictInconclusive:
				if len(o.Findings) > 0 || len(o.Reasons) == 0 {
					t.Errorf("inconclusive with findings %v and reasons %v", o.Findings, o.Reasons)
				}
			}
			for _, s := range o.Remediations {
				if !s.Generic {
					continue
				}
				if s.Ready != tt.generic {
					t.Errorf("generic %s: got ready %v, want %v (%s)", s.ID, s.Ready, tt.generic, s.NotReady)
				}
				if !s.Ready && !strings.Contains(s.NotReady, "healthy") {
					t.Errorf("generic %s: not_ready %q does not say the device is healthy", s.ID, s.NotReady)
				}
			}
		})
	}
}

func TestVerdictNamesTheRulesNotEvaluated(t *testing.T) {
	p := program(t, shipped(t), "slow_pc")
	fields := healthy("slow_pc")
	delete(fields, freeSpace)
	delete(fields, gpoDC)
	o := p.EvaluateAt(fields, now)
	fresh := now.Add(-time.Hour)
	o.Conclude(topic.Data{AsOf: &fresh})
	if len(o.Reasons) != 1 || !slices.Equal(o.Reasons[0].Rules, []string{"low_disk_space", "slow_group_policy"}) ||
		!strings.Contains(o.Reasons[0].Message, "2 of 5 rules") {
		t.Errorf("got %+v, want low_disk_space and slow_group_policy named, 2 of 5", o.Reasons)
	}
}

func TestStaleReasonSaysTheAge(t *testing.T) {
	p := program(t, shipped(t), "onedrive")
	o := p.EvaluateAt(healthy("onedrive"), now)
	old := time.Date(2026, 2, 17, 8, 0, 0, 0, time.UTC)
	o.Conclude(topic.Data{AsOf: &old, Stale: true, MaxAge: 7 * 24 * time.Hour})
	if len(o.Reasons) != 1 || o.Reasons[0].Message != "the data is from 2026-02-17T08:00:00Z, older than the topic's maximum age of 7d" {
		t.Errorf("got %+v", o.Reasons)
	}
}
