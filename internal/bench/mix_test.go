package bench

import "testing"

func TestMixScheduleHoldsTheMix(t *testing.T) {
	mix := realisticMix()
	total := 0
	for _, e := range mix {
		total += e.weight
	}
	if total != 100 {
		t.Fatalf("got weights summing to %d, want 100", total)
	}
	slots := mixSchedule(mix)
	got := map[mixEntry]int{}
	for _, e := range slots {
		got[e]++
	}
	for _, e := range mix {
		if got[e] != e.weight {
			t.Errorf("%s %s: got %d of 100 slots, want %d", e.kind, e.topic, got[e], e.weight)
		}
	}
	// Interleaved, not in blocks: the first 20 slots hold more than one kind.
	kinds := map[string]bool{}
	for _, e := range slots[:20] {
		kinds[e.kind] = true
	}
	if len(kinds) < 3 {
		t.Errorf("got %d kinds in the first 20 slots, want the kinds interleaved", len(kinds))
	}
}

func TestDirectCalls(t *testing.T) {
	queries := map[string]int{"outlook": 1, "slow_pc": 2, "l1_device_checklist": 1}
	tests := []struct {
		e            mixEntry
		nql, actions int
	}{
		{mixEntry{kind: kindIdentify}, 1, 0},
		{mixEntry{kind: kindDiagnoseLive, topic: "outlook"}, 1, 0},
		{mixEntry{kind: kindDiagnoseLive, topic: "slow_pc"}, 2, 0},
		{mixEntry{kind: kindDiagnoseCached, topic: "l1_device_checklist"}, 1, 0},
		{mixEntry{kind: kindRemediate}, 1, 1},
		{mixEntry{kind: kindPoll}, 1, 0},
	}
	for _, tt := range tests {
		nql, actions := directCalls(tt.e, queries)
		if nql != tt.nql || actions != tt.actions {
			t.Errorf("%s %s: got %d NQL, %d actions; want %d, %d", tt.e.kind, tt.e.topic, nql, actions, tt.nql, tt.actions)
		}
	}
}
