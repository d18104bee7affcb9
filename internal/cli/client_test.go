package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/problem"
)

const testKey = "dxb_TESTKEYtestkeyTESTKEYtestkeyTESTKEYtestkey1"

// fakeAPI answers the client commands as dexbridge does, from fixed data: it is
// about what the commands do with answers (tables, JSON, zones, progress, retries),
// not about the answers, which the end-to-end tests check against nxsim.
type fakeAPI struct {
	t         *testing.T
	mu        sync.Mutex
	statuses  []string // the execution's states, one per poll
	polls     int
	refusals  int    // 429s to answer GET /api/v1/status before the status
	retryWait string // their Retry-After, in seconds
	requests  []string
}

var seen = time.Date(2026, 11, 30, 19, 25, 2, 0, time.UTC)

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("X-API-Key") != testKey {
		problem.Write(w, r, "", problem.New(problem.Unauthorized, "no such key"))
		return
	}
	device := events.ExecutionDevice{Name: "PC-AWAY", CollectorUID: "c0ffee00-0000-4000-8000-000000000001", Instance: "eu",
		LastSeen: &seen, Presence: events.PresenceOffline}
	exec := func(status string) api.Execution {
		return api.Execution{Execution: events.Execution{ID: "ex_1", RemoteAction: "#disk_cleanup", Device: device, Status: status,
			CreatedAt: seen, UpdatedAt: seen, ExpiresAt: seen.Add(time.Hour), Outputs: map[string]any{"FreedMB": 512}}}
	}
	switch {
	case r.URL.Path == "/api/v1/topics":
		writeTestJSON(w, map[string]any{"topics": []events.Topic{
			{ID: "printing", Title: "Printing problems", Platforms: []string{"windows"}, Phrases: []string{"I cannot print anything", "The printer doesn't work"},
				Queries: []string{"#diagnose_printing"}, Remediations: []events.Remediation{{ID: "restart_spooler", Title: "Restart the spooler", RemoteAction: "#restart_spooler"}}},
			{ID: "outlook", Title: "Outlook issues", Platforms: []string{"windows", "macos"}, Phrases: []string{"Outlook keeps crashing"}},
		}})
	case r.URL.Path == "/api/v1/devices":
		writeTestJSON(w, api.Devices{Source: "cache", DataAsOf: &seen, Devices: []events.Device{{Name: "PC-AWAY", Instance: "eu",
			Platform: "windows", LastSeen: &seen, Presence: events.PresenceOffline, User: "jdoe", MatchedBy: events.MatchedByUsernameWithoutDomain}}})
	case strings.HasSuffix(r.URL.Path, "/diagnosis"):
		writeTestJSON(w, events.Diagnosis{ID: "dg_1", Topic: "printing", Device: device, Verdict: events.VerdictInconclusive,
			VerdictReasons: []events.VerdictReason{{Code: events.ReasonRulesNotEvaluated, Message: "the spooler's state is unknown", Rules: []string{"spooler_stopped"}}},
			Rules:          []events.RuleResult{{Rule: "spooler_stopped", Title: "The print spooler is stopped", Status: "not_evaluated", Reason: "no data"}},
			Source:         "live", DataAsOf: &seen, Stale: true, MaxAgeSeconds: 3600})
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/remote-actions/executions":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(exec(f.statuses[0]))
	case r.URL.Path == "/api/v1/remote-actions/executions/ex_1":
		f.polls = min(f.polls+1, len(f.statuses)-1)
		writeTestJSON(w, exec(f.statuses[f.polls]))
	case r.URL.Path == "/api/v1/status":
		if f.refusals > 0 {
			f.refusals--
			secs, _ := strconv.Atoi(f.retryWait)
			problem.Write(w, r, "", problem.New(problem.RateLimited, "slow down").Retry(time.Duration(secs)*time.Second))
			return
		}
		writeTestJSON(w, api.Status{Instances: []events.InstanceStatus{{Name: "eu", State: "up", DataAsOf: &seen,
			Cache: events.CacheSize{Devices: 1450, Users: 900, Activities: 5000}}}, Cache: events.CacheSize{Devices: 1450, Users: 900, Activities: 5000}})
	default:
		problem.Write(w, r, "", problem.New(problem.NotFound, "no route"))
	}
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type result struct {
	err            error
	stdout, stderr string
}

// cli runs a command against the fake API with the key in $DEXBRIDGE_API_KEY (or
// none, when key is false), in a zone an hour east of UTC.
func runCLI(t *testing.T, f *fakeAPI, terminal, key bool, args ...string) result {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	env := Env{Getenv: func(k string) string {
		switch {
		case k == "DEXBRIDGE_API_KEY" && key:
			return testKey
		case k == "DEXBRIDGE_URL":
			return srv.URL
		}
		return ""
	}, Stdout: &out, Stderr: &errOut, Version: "1.2.3", Terminal: terminal, Location: time.FixedZone("CET", 3600)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, args, env)
	r := result{err: err, stdout: out.String(), stderr: errOut.String()}
	for _, s := range []string{r.stdout, r.stderr, errText(err)} {
		if strings.Contains(s, testKey) || strings.Contains(s, testKey[:20]) {
			t.Errorf("dexbridge %s printed the key:\n%s", strings.Join(args, " "), s)
		}
	}
	return r
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newFake(t *testing.T) *fakeAPI {
	return &fakeAPI{t: t, statuses: []string{"pending", "in_progress", "success"}}
}

// TestHelpExitsCleanlyAndShowsArguments: -h and --help anywhere on the line, with or
// without positional arguments, print the command's usage (its positional
// arguments, its flags) on stdout and succeed; the key is never shown as a default.
func TestHelpExitsCleanlyAndShowsArguments(t *testing.T) {
	f := newFake(t)
	for _, c := range commands() {
		if c.name == "check" || c.name == "audit" {
			continue // their own help: owned elsewhere / an export with its own usage
		}
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {c.name, "positional", "-h"}, {c.name, "-h", "x", "y"}} {
			if c.name == "apikey" {
				args = append([]string{"apikey", "list"}, args[1:]...)
			}
			r := runCLI(t, f, false, true, args...)
			if r.err != nil {
				t.Errorf("dexbridge %s: got %v, want success", strings.Join(args, " "), r.err)
			}
			if !strings.Contains(r.stdout, "Usage: dexbridge "+c.usage) {
				t.Errorf("dexbridge %s: stdout lacks the usage line %q:\n%s", strings.Join(args, " "), c.usage, r.stdout)
			}
		}
	}
	r := runCLI(t, f, false, true, "diagnose", "printing", "-h")
	for _, want := range []string{"TOPIC", "-device", "-o string", "-utc", "$DEXBRIDGE_API_KEY"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diagnose -h lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCLI(t, f, false, true, "diagnose", "-bogus"); !errors.Is(r.err, ErrUsage) {
		t.Errorf("a bad flag: got %v, want a usage error", r.err)
	}
}

// TestNoKeyInAnyOutput: whatever goes wrong, with the key from the environment or
// the command line, in -v traces too, the key is not printed (runCLI checks every
// output of every run).
func TestNoKeyInAnyOutput(t *testing.T) {
	f := newFake(t)
	runs := [][]string{
		{"status", "-v"},
		{"status", "-v", "-key", testKey},
		{"status", "-key=" + testKey, "-url", "http://127.0.0.1:1"}, // connection refused
		{"topics", "-key", testKey, "-o", "yaml"},                   // bad flag value
		{"diagnose", "printing", "-device", "PC-AWAY", "-v", "-o", "json"},
	}
	for _, args := range runs {
		r := runCLI(t, f, false, false, args...)
		if args[1] == "-v" && slices.Contains(args, "-key") && (!strings.Contains(r.stderr, "> GET ") || !strings.Contains(r.stderr, "X-Api-Key: "+redacted)) {
			t.Errorf("dexbridge %s: -v trace lacks the request or hides nothing:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
	if r := runCLI(t, f, false, true, "status", "-v"); !strings.Contains(r.stderr, "X-Api-Key: "+redacted) {
		t.Errorf("-v with the key from the environment: %s", r.stderr)
	}
	if r := runCLI(t, f, false, false, "status"); !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), "API key is needed") {
		t.Errorf("no key: got %v", r.err)
	}
}

// TestTablesJSONAndZones: every client command prints a table by default and the
// API's JSON with -o json; times carry their zone, local (CET here) or UTC.
func TestTablesJSONAndZones(t *testing.T) {
	f := newFake(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"topics"}, []string{"TOPIC", "EMPLOYEES SAY", `"I cannot print anything", "The printer doesn't work"`}},
		{[]string{"topics", "printing"}, []string{"Employees say:", `"The printer doesn't work"`, "restart_spooler"}},
		{[]string{"devices", "-user", `CORP\jdoe`}, []string{"MATCHED BY", events.MatchedByUsernameWithoutDomain, "offline", "2026-11-30 20:25 +01:00"}},
		{[]string{"diagnose", "printing", "-device", "PC-AWAY"}, []string{"verdict inconclusive", "because rules_not_evaluated: the spooler's state is unknown (rules: spooler_stopped)",
			"device: offline, last seen 2026-11-30 20:25 +01:00", "stale (older than 1h0m0s)", "not_evaluated"}},
		{[]string{"status"}, []string{"INSTANCE", "eu", "up", "1450", "2026-11-30 20:25 +01:00"}},
		{[]string{"status", "-utc"}, []string{"2026-11-30 19:25 Z"}},
		{[]string{"version"}, []string{"1.2.3"}},
	} {
		r := runCLI(t, f, false, true, tt.args...)
		if r.err != nil {
			t.Fatalf("dexbridge %s: %v", strings.Join(tt.args, " "), r.err)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("dexbridge %s: lacks %q:\n%s", strings.Join(tt.args, " "), w, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\033[") {
			t.Errorf("dexbridge %s: terminal codes off a terminal:\n%q", strings.Join(tt.args, " "), r.stdout)
		}
		j := runCLI(t, f, false, true, append(tt.args, "-o", "json")...)
		var v any
		if j.err != nil || json.Unmarshal([]byte(j.stdout), &v) != nil {
			t.Errorf("dexbridge %s -o json: %v, not JSON:\n%s", strings.Join(tt.args, " "), j.err, j.stdout)
		}
	}
}

// TestProgressFollowsTheAPI: while a remote action runs, the progress shows each
// status the API reports, as plain lines off a terminal and as one redrawn line on
// one; the result is the last status the API gave.
func TestProgressFollowsTheAPI(t *testing.T) {
	f := newFake(t)
	r := runCLI(t, f, false, true, "action", "#disk_cleanup", "-device", "PC-AWAY", "-wait", "1m")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		_, s, _ := strings.Cut(l, "#disk_cleanup on PC-AWAY: ")
		states = append(states, s)
	}
	if !slices.Equal(states, []string{"pending, device offline, last seen 2026-11-30 20:25 +01:00"}) {
		// The device is offline: pending on it ends the wait at once.
		t.Errorf("progress off a terminal: got %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "execution ex_1: pending") || !strings.Contains(r.stdout, "the device is not online") {
		t.Errorf("offline device: got\n%s", r.stdout)
	}

	// An execution -wait follows it through every state.
	f = newFake(t)
	r = runCLI(t, f, false, true, "execution", "ex_1", "-wait", "1m")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Count(r.stderr, "\n") != 2 || !strings.Contains(r.stderr, ": in_progress\n") || !strings.Contains(r.stderr, ": success\n") ||
		strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\033") {
		t.Errorf("progress off a terminal: got %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "execution ex_1: success") || !strings.Contains(r.stdout, "FreedMB") {
		t.Errorf("result: got\n%s", r.stdout)
	}

	// On a terminal: one line redrawn in place, cleared at the end; colours.
	f = newFake(t)
	r = runCLI(t, f, true, true, "execution", "ex_1", "-wait", "1m")
	if r.err != nil || !strings.Contains(r.stderr, "\r\033[K") || !strings.HasSuffix(r.stderr, "\r\033[K") {
		t.Errorf("progress on a terminal: %v %q", r.err, r.stderr)
	}
	if r := runCLI(t, newFake(t), true, true, "diagnose", "printing", "-device", "PC-AWAY"); !strings.Contains(r.stdout, "\033[33minconclusive\033[0m") {
		t.Errorf("no colour on a terminal:\n%q", r.stdout)
	}
}

// TestRetryAfterIsHonouredAndBounded: a 429 with Retry-After is retried after that
// long, at most maxRetries times; a wait longer than the command sits through is not.
func TestRetryAfterIsHonouredAndBounded(t *testing.T) {
	f := newFake(t)
	f.refusals, f.retryWait = 2, "1"
	r := runCLI(t, f, false, true, "status")
	if r.err != nil || strings.Count(r.stderr, "retrying in 1s") != 2 || !strings.Contains(r.stdout, "eu") {
		t.Errorf("two 429s then the answer: %v\n%s\n%s", r.err, r.stderr, r.stdout)
	}
	f = newFake(t)
	f.refusals, f.retryWait = 100, "1"
	r = runCLI(t, f, false, true, "status")
	if problem.CodeOf(r.err) != problem.RateLimited || len(f.requests) != 1+maxRetries {
		t.Errorf("always 429: got %v after %d requests, want rate_limited after %d", r.err, len(f.requests), 1+maxRetries)
	}
	f = newFake(t)
	f.refusals, f.retryWait = 1, "3600"
	r = runCLI(t, f, false, true, "status")
	if problem.CodeOf(r.err) != problem.RateLimited || len(f.requests) != 1 || !strings.Contains(r.stderr, "not retrying") {
		t.Errorf("Retry-After: 3600: got %v after %d requests\n%s", r.err, len(f.requests), r.stderr)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0": 0, "1": time.Second, " 120 ": 2 * time.Minute,
		"Thu, 03 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Thu, 03 Dec 2026 11:00:00 GMT": 0,
		"":                              -1, "-1": -1, "1.5": -1, "soon": -1, "99999999999": -1,
	} {
		got, ok := parseRetryAfter(in, now)
		if (want < 0) == ok || (ok && got != want) {
			t.Errorf("%q: got %v %v, want %v", in, got, ok, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0", "Thu, 03 Dec 2026 12:00:30 GMT", "Monday, 02-Jan-06 15:04:05 MST", "", "4294967295"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseRetryAfter(s, now); ok && d < 0 {
			t.Fatalf("%q: negative wait %v", s, d)
		}
	})
}
