package poller

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// TestSavedQueryIsInTheQueriesFile keeps config/queries.yaml (which nxsim loads and
// the README tells administrators to save) in step with the poller. On a mismatch it
// prints the entry to paste.
func TestSavedQueryIsInTheQueriesFile(t *testing.T) {
	qs, err := topic.LoadQueries(filepath.Join(testenv.RepoRoot(t), "config", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.ID != QueryID {
			continue
		}
		if q.NQL != QueryText() {
			t.Errorf("config/queries.yaml: %s differs from poller.QueryText(); save this:\n%s", QueryID, yamlEntry())
		}
		return
	}
	t.Errorf("config/queries.yaml has no %s; add:\n%s", QueryID, yamlEntry())
}

func yamlEntry() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - id: %q\n    description: ...\n    nql: |\n", QueryID)
	for _, line := range strings.Split(strings.TrimSuffix(QueryText(), "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	return b.String()
}

// TestQueryCompilesWithEveryParameter: the text is NQL the interpreter accepts, with
// exactly the BatchSize parameters Params fills, each only in the where clause.
func TestQueryCompilesWithEveryParameter(t *testing.T) {
	plan, err := nql.Compile(QueryText(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := plan.Analysis().Parameters
	if len(got) != BatchSize {
		t.Fatalf("got %d parameters, want %d", len(got), BatchSize)
	}
	p := Params([]string{"a", "b"})
	if len(p) != BatchSize || p["request_id_1"] != "a" || p["request_id_2"] != "b" || p["request_id_250"] != unusedRequestID {
		t.Errorf("params: got %d, 1=%q 2=%q 250=%q", len(p), p["request_id_1"], p["request_id_2"], p["request_id_250"])
	}
	for _, name := range got {
		if _, ok := p[name]; !ok {
			t.Errorf("the query uses $%s, which Params does not fill", name)
		}
	}
}

func TestChunks(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 0}, {1, 1}, {200, 1}, {250, 1}, {251, 2}, {1000, 4}} {
		if got := len(Chunks(make([]store.Execution, tt.n))); got != tt.want {
			t.Errorf("%d executions: got %d queries, want %d", tt.n, got, tt.want)
		}
	}
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"pending", events.StatusPending, true},
		{"in_progress", events.StatusInProgress, true},
		{"In progress", events.StatusInProgress, true},
		{"waiting_for_device", events.StatusWaitingForDevice, true},
		{"success", events.StatusSuccess, true},
		{"failure", events.StatusFailure, true},
		{"FAILED", events.StatusFailure, true},
		{"expired", events.StatusExpired, true},
		{"canceled", events.StatusCancelled, true},
		{"something new", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := MapStatus(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("MapStatus(%q): got %q %v, want %q %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	exec := func(id, status string, expiresIn time.Duration) store.Execution {
		return store.Execution{ID: "ex_" + id, RequestID: "req-" + id, CollectorUID: "uid-" + id, Status: status,
			ExpiresAt: now.Add(expiresIn)}
	}
	row := func(id, status, details, outputs string) map[string]any {
		return map[string]any{"remote_action.executions.request_id": "req-" + id, "device.collector.uid": "uid-" + id,
			"remote_action.executions.status": status, "remote_action.executions.status_details": details,
			"remote_action.executions.outputs": outputs}
	}
	tests := []struct {
		name string
		open store.Execution
		rows []map[string]any
		want string // "" for no change, else status/source/details/outputs
	}{
		{"no row yet", exec("1", "pending", time.Hour), nil, ""},
		{"same state", exec("1", "pending", time.Hour), []map[string]any{row("1", "pending", "", "")}, ""},
		{"started", exec("1", "pending", time.Hour), []map[string]any{row("1", "in_progress", "Executing script", "")},
			"in_progress/poller/Executing script/map[]"},
		{"succeeded with outputs", exec("1", "in_progress", time.Hour), []map[string]any{row("1", "success", "ok", `{"IsOnline":"Yes"}`)},
			"success/poller/ok/map[IsOnline:Yes]"},
		{"another request's row", exec("1", "pending", time.Hour), []map[string]any{row("2", "success", "ok", "")}, ""},
		{"unknown status", exec("1", "pending", time.Hour), []map[string]any{row("1", "paused", "?", "")}, ""},
		{"expired by dexbridge", exec("1", "waiting_for_device", -time.Hour), nil, "expired/expiry/" + expiredDetails + "/map[]"},
		{"within the grace", exec("1", "pending", -time.Second), nil, ""},
		{"final state beats expiry", exec("1", "pending", -time.Hour), []map[string]any{row("1", "failure", "exit 1", "")},
			"failure/poller/exit 1/map[]"},
	}
	for _, tt := range tests {
		got := Plan([]store.Execution{tt.open}, tt.rows, now, time.Minute)
		var s string
		if len(got) == 1 {
			s = fmt.Sprintf("%s/%s/%s/%v", got[0].Status, got[0].Source, got[0].StatusDetails, got[0].Outputs)
		} else if len(got) > 1 {
			s = fmt.Sprintf("%d changes", len(got))
		}
		if s != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, s, tt.want)
		}
	}
}
