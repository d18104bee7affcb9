package nql

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fuzzCorpus are the guide's queries plus queries that reach the other clauses.
func fuzzCorpus(f *testing.F) {
	for _, id := range guideIDs(f) {
		f.Add(guideQuery(f, id))
	}
	for _, q := range []string{
		`remote_action.executions past 24h | where request_id in ["a", $b] | list request_id, status`,
		`devices | summarize n = count(), m = hardware.memory.avg() / 2 by operating_system.platform | sort n desc | limit 3`,
		`devices | include device_performance.events | compute l = cpu_usage.last() | where l > 1.5 or !(name contains "x")`,
		`users | with session.events past 2h | where device.name == "PC-*" | list name`,
		`devices | where name != null and -boot.days_since_last_full_boot < 3 | compute a = 1 + 2 * 3 | sort a`,
		`alert.alerts | where status == "open" | list monitor.priority, trigger_time`,
		`devices | where #department == "IT" or device.score.device_health < 5 | list device.#location, score.x.y`,
	} {
		f.Add(q)
	}
}

func FuzzParse(f *testing.F) {
	fuzzCorpus(f)
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse(src)
		checkError(t, src, err)
		_, err = Compile(src, nil)
		checkError(t, src, err)
	})
}

func checkError(t *testing.T, src string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("%q: got error %T %v, want *Error", src, err, err)
	}
	if pe.Line < 1 || pe.Column < 1 || pe.Line > strings.Count(src, "\n")+1 {
		t.Fatalf("%q: got position %d:%d, want one inside the text", src, pe.Line, pe.Column)
	}
	if pe.Msg == "" {
		t.Fatalf("%q: empty error message", src)
	}
}

func FuzzRun(f *testing.F) {
	fuzzCorpus(f)
	params := map[string]string{"username": "alice", "request_id": "req-1", "device_name": "PC-1", "b": "2"}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, nil)
		if err != nil {
			return
		}
		for _, s := range []Source{fixture(), &indexedSource{memSource: fixture(), indexed: map[string]bool{
			"devices/device.name": true, "remote_action.executions/remote_action.executions.request_id": true,
		}}} {
			res, err := p.Run(context.Background(), s, params, RunOptions{Now: testNow, MaxRows: 50})
			if err != nil {
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Fatalf("%q: got error %v, want nil or *ParamError", src, err)
				}
				continue
			}
			for _, row := range res.Rows {
				if len(row) != len(res.Headers) {
					t.Fatalf("%q: row of %d values for %d headers", src, len(row), len(res.Headers))
				}
			}
			if len(res.Rows) > 50 {
				t.Fatalf("%q: %d rows, want at most MaxRows 50", src, len(res.Rows))
			}
		}
	})
}
