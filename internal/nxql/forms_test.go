package nxql_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

type form = nxql.Form

func loadForms(t testing.TB) []form {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	forms, err := nxql.ParseForms(b)
	if err != nil {
		t.Fatal(err)
	}
	return forms
}

// savedNQL reads every saved query of the repository's topics and generic
// queries file, by id.
func savedNQL(t testing.TB) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "topics", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no topics: %v", err)
	}
	return testenv.QueriesIn(t, append(files, filepath.Join("..", "..", "config", "queries.yaml"))...)
}

// nqlSource presents a fleet as an nql.Source.
type nqlSource struct{ f *fleet.Fleet }

func (s nqlSource) Scan(ctx context.Context, table string, w nql.Window, fn func(nql.Row) error) error {
	return s.f.Scan(ctx, table, w.From, w.To, func(r fleet.Row) error { return fn(r) })
}

func (s nqlSource) Related(ctx context.Context, obj nql.Row, table string, w nql.Window, fn func(nql.Row) error) error {
	return s.f.Related(ctx, obj, table, w.From, w.To, func(r fleet.Row) error { return fn(r) })
}

// TestEveryQueryHasAnNXQLForm: the later step that adds NXQL forms to the topics
// copies them from testdata, so none may be missing.
func TestEveryQueryHasAnNXQLForm(t *testing.T) {
	forms := map[string]bool{}
	for _, f := range loadForms(t) {
		forms[f.ID] = true
	}
	for id := range savedNQL(t) {
		if !forms[id] {
			t.Errorf("query %s has no NXQL form in testdata/queries.yaml", id)
		}
	}
}

// TestNXQLFormsMatchNQL runs each saved NQL query and its NXQL form over the same
// fleet, for devices, users and executions picked with a seeded generator, and
// compares the rows column by column.
func TestNXQLFormsMatchNQL(t *testing.T) {
	f := newFleet(t, 400, 11)
	rng := rand.New(rand.NewPCG(20, 24))
	reqIDs := addExecutions(t, f, rng, 12)
	saved := savedNQL(t)
	devices := sampleDevices(t, f, rng, 30)
	users := usersOf(t, f, devices)
	schema := nxql.NewSchema()
	for _, fm := range loadForms(t) {
		t.Run(strings.TrimPrefix(fm.ID, "#"), func(t *testing.T) {
			text, ok := saved[fm.ID]
			if !ok {
				t.Fatalf("no saved NQL query %s", fm.ID)
			}
			if fm.Dynamic {
				// The tenant's saved query lists its dynamic fields; the NXQL form
				// selects them with a wildcard.
				text = strings.TrimRight(text, "\n") + ", " + strings.Join(fleet.DynamicFields(), ", ") + "\n"
			}
			plan, err := nql.Compile(text, nql.DefaultSchema())
			if err != nil {
				t.Fatalf("NQL: %v", err)
			}
			if err := fm.Check(schema); err != nil { // as written, before any parameter is substituted
				t.Fatalf("NXQL form: %v", err)
			}
			compared := 0
			for _, params := range paramSets(fm, devices, users, reqIDs) {
				want := runNQL(t, f, plan, params, fm)
				got := runForms(t, f, fm, params)
				if !slices.Equal(got, want) {
					t.Fatalf("params %v:\nNXQL rows %d:\n  %s\nNQL rows %d:\n  %s", params, len(got),
						strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
				}
				compared += len(want)
			}
			if compared == 0 {
				t.Fatalf("no parameter set returned a row: the comparison proved nothing")
			}
			t.Logf("%d rows compared", compared)
		})
	}
}

// sampleDevices picks n devices at random, with both platforms, plus every
// scenario device.
func sampleDevices(t testing.TB, f *fleet.Fleet, rng *rand.Rand, n int) []fleet.Device {
	t.Helper()
	seen := map[int]bool{}
	var out []fleet.Device
	for i := range len(f.ScenarioNames()) {
		seen[i] = true
		out = append(out, f.Device(i))
	}
	for len(out) < n+len(f.ScenarioNames()) {
		i := rng.IntN(f.Size())
		if !seen[i] {
			seen[i] = true
			out = append(out, f.Device(i))
		}
	}
	platforms := map[string]int{}
	for _, d := range out {
		platforms[d.Platform]++
	}
	if platforms["Windows"] == 0 || platforms["macOS"] == 0 {
		t.Fatalf("sample has platforms %v, want both", platforms)
	}
	return out
}

// user is a user's identifiers.
type user struct{ name, upn, email, sid string }

func usersOf(t testing.TB, f *fleet.Fleet, devices []fleet.Device) []user {
	t.Helper()
	ctx := context.Background()
	var out []user
	seen := map[string]bool{}
	for _, d := range devices {
		rows, _ := f.Lookup(ctx, "devices", "device.name", []string{d.Name})
		name, _ := rows[0].Value("device.login.last_login_user_name").(string)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		us, _ := f.Lookup(ctx, "users", "user.name", []string{name})
		if len(us) != 1 {
			t.Fatalf("user %s: %d rows", name, len(us))
		}
		u := us[0]
		out = append(out, user{name, u.Value("user.upn").(string), u.Value("user.ad.email_address").(string), u.Value("user.sid").(string)})
	}
	return out
}

// addExecutions stores n executions of random remote actions on random devices,
// in random states, within the last 30 hours.
func addExecutions(t testing.TB, f *fleet.Fleet, rng *rand.Rand, n int) []string {
	t.Helper()
	statuses := []string{fleet.StatusPending, fleet.StatusInProgress, fleet.StatusWaitingForDevice,
		fleet.StatusSuccess, fleet.StatusFailure, fleet.StatusExpired}
	actions := []struct{ id, name, purpose string }{
		{"#get_onedrive_status", "Get OneDrive status", "data_collection"},
		{"#disk_cleanup", "Disk cleanup", "remediation"},
		{"#restart_print_spooler", "Restart print spooler", "remediation"},
	}
	var ids []string
	for k := range n {
		a := actions[rng.IntN(len(actions))]
		at := fixedNow.Add(-time.Duration(rng.IntN(30*3600)) * time.Second)
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", k+1)
		ids = append(ids, id)
		for range 1 + rng.IntN(2) {
			e := fleet.Execution{RequestID: id, Device: rng.IntN(f.Size()), ActionID: a.id, ActionName: a.name,
				Purpose: a.purpose, Status: statuses[rng.IntN(len(statuses))], StatusDetails: "details",
				Time: at, Created: at, ExpiresAt: at.Add(time.Hour), Inputs: map[string]string{}}
			if e.Status == fleet.StatusSuccess {
				e.Outputs = map[string]any{"OneDriveStatus": "OneDrive is running"}
			}
			f.AddExecution(e)
		}
	}
	return ids
}

// paramSets lists the NQL parameter sets a form is compared with.
func paramSets(fm form, devices []fleet.Device, users []user, reqIDs []string) []map[string]string {
	var out []map[string]string
	switch {
	case fm.PlatformParam != "":
		for _, p := range []string{"Windows", "macOS"} {
			out = append(out, map[string]string{fm.PlatformParam: p})
		}
	case len(fm.Params) == 0:
		out = append(out, map[string]string{})
	case len(fm.Params) > 1: // the poller's grouped query
		m := map[string]string{}
		for k, p := range fm.Params {
			m[p] = "00000000-0000-0000-0000-000000000000"
			if k < len(reqIDs) && k%2 == 0 {
				m[p] = reqIDs[k]
			}
		}
		out = append(out, m)
	default:
		p := fm.Params[0]
		for _, d := range devices {
			switch p {
			case "device_name":
				out = append(out, map[string]string{p: d.Name})
			case "collector_uid":
				out = append(out, map[string]string{p: d.CollectorUID})
			}
		}
		for _, u := range users {
			switch p {
			case "username":
				out = append(out, map[string]string{p: u.name})
			case "upn":
				out = append(out, map[string]string{p: u.upn})
			case "email":
				out = append(out, map[string]string{p: u.email})
			case "sid":
				out = append(out, map[string]string{p: u.sid})
			}
		}
		if p == "request_id" {
			for _, id := range reqIDs {
				out = append(out, map[string]string{p: id})
			}
		}
	}
	return out
}

// runNQL runs the NQL query and renders each row as the mapped columns.
func runNQL(t testing.TB, f *fleet.Fleet, plan *nql.Plan, params map[string]string, fm form) []string {
	t.Helper()
	res, err := plan.Run(context.Background(), nqlSource{f}, params, nql.RunOptions{Now: fixedNow})
	if err != nil {
		t.Fatalf("NQL run: %v", err)
	}
	for col := range fm.Columns {
		if !slices.Contains(res.Headers, col) {
			t.Fatalf("column %s is not an NQL column (%v)", col, res.Headers)
		}
	}
	for _, h := range res.Headers {
		_, mapped := fm.Columns[h]
		mapped = mapped || fm.Dynamic && nql.IsDynamicField(h)
		if _, skip := fm.Unmapped[h]; !mapped && !skip {
			t.Fatalf("NQL column %s is neither mapped nor listed as unmapped", h)
		}
	}
	var out []string
	for _, row := range res.Rows {
		rec := map[string]any{}
		for k, h := range res.Headers {
			if _, ok := fm.Columns[h]; ok || fm.Dynamic && nql.IsDynamicField(h) {
				rec[h] = row[k]
			}
		}
		out = append(out, render(rec))
	}
	sort.Strings(out)
	return out
}

// runForms runs the NXQL queries of a form, merges their rows on the key, and
// renders each row under the NQL column names.
func runForms(t testing.TB, f *fleet.Fleet, fm form, params map[string]string) []string {
	t.Helper()
	p := fm.Args(params)
	platforms, err := fm.Platforms(params)
	if err != nil {
		t.Fatal(err)
	}
	results := make([][]map[string]any, len(fm.NXQL))
	for k := range fm.NXQL {
		text := nxql.Substitute(fm.NXQL[k].Text, p)
		cq, err := nxql.Compile(text, nxql.NewSchema())
		if err != nil {
			t.Fatalf("NXQL with parameters: %v", err)
		}
		res, err := cq.Run(context.Background(), fleetSource{f}, nxql.RunOptions{Now: fixedNow, Platforms: platforms})
		if err != nil {
			t.Fatalf("NXQL run: %v", err)
		}
		rows := make([]map[string]any, len(res.Rows))
		for i, row := range res.Rows {
			rows[i] = map[string]any{}
			for j, c := range res.Columns {
				rows[i][c] = row[j]
			}
		}
		results[k] = rows
	}
	var out []string
	for _, rec := range fm.Merge(results) {
		out = append(out, render(fm.ToNQL(rec)))
	}
	sort.Strings(out)
	return out
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// render writes a record with its columns sorted; numbers are compared to 9
// significant digits (an average summed in another order differs in the last bits).
func render(rec map[string]any) string {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		switch v := rec[k].(type) {
		case nil:
			b.WriteString("null")
		case time.Time:
			b.WriteString(v.UTC().Format(time.RFC3339))
		case string:
			b.WriteString(strconv.Quote(v))
		default:
			if n, ok := toFloat(v); ok && !math.IsNaN(n) {
				b.WriteString(strconv.FormatFloat(n, 'g', 9, 64))
			} else {
				fmt.Fprint(&b, v)
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}
