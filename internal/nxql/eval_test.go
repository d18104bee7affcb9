package nxql_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

// column returns the values of one column.
func column(t testing.TB, res *nxql.Result, name string) []any {
	t.Helper()
	for k, c := range res.Columns {
		if c == name {
			out := make([]any, len(res.Rows))
			for i, r := range res.Rows {
				out[i] = r[k]
			}
			return out
		}
	}
	t.Fatalf("no column %s in %v", name, res.Columns)
	return nil
}

func TestRunPlatforms(t *testing.T) {
	f := newFleet(t, 300, 5)
	all := run(t, f, `(select (name platform) (from device))`, "windows", "mac_os")
	if len(all.Rows) != f.Size() {
		t.Fatalf("%d devices for both platforms, want %d", len(all.Rows), f.Size())
	}
	counts := map[string]int{}
	for _, p := range column(t, all, "platform") {
		counts[p.(string)]++
	}
	if counts["windows"] == 0 || counts["mac_os"] == 0 || counts["windows"]+counts["mac_os"] != f.Size() {
		t.Fatalf("platforms %v", counts)
	}
	for _, p := range []string{"windows", "mac_os"} {
		res := run(t, f, `(select (name platform) (from device))`, p)
		if len(res.Rows) != counts[p] {
			t.Errorf("platform=%s: %d devices, want %d", p, len(res.Rows), counts[p])
		}
		for _, v := range column(t, res, "platform") {
			if v != p {
				t.Fatalf("platform=%s returned a %v device", p, v)
			}
		}
	}
	if res := run(t, f, `(select (name) (from device))`, "mobile"); len(res.Rows) != 0 {
		t.Fatalf("platform=mobile: %d devices, want none", len(res.Rows))
	}
}

// TestRunFilters checks where semantics on devices picked at random: the filters
// of one where clause are alternatives, where clauses all apply.
func TestRunFilters(t *testing.T) {
	f := newFleet(t, 300, 6)
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := f.Device(rng.IntN(f.Size())), f.Device(rng.IntN(f.Size()))
	for a.Index == b.Index {
		b = f.Device(rng.IntN(f.Size()))
	}
	both := run(t, f, `(select (name) (from device (where device (eq name (string "`+a.Name+`")) (eq name (string "`+strings.ToLower(b.Name)+`")))))`)
	if len(both.Rows) != 2 {
		t.Fatalf("two alternatives matched %d devices, want 2", len(both.Rows))
	}
	none := run(t, f, `(select (name) (from device (where device (eq name (string "`+a.Name+`"))) (where device (eq name (string "`+b.Name+`")))))`)
	if len(none.Rows) != 0 {
		t.Fatalf("two where clauses matched %d devices, want none", len(none.Rows))
	}
	pat := run(t, f, `(select (name) (from device (where device (eq name (pattern "pc-*")))))`)
	if got, want := len(pat.Rows), len(f.ScenarioNames())-1; got != want { // MAC-HEALTHY is no PC
		t.Fatalf("pattern pc-* matched %d devices, want %d", got, want)
	}
	notPat := run(t, f, `(select (name) (from device (where device (ne name (pattern "pc-*")))))`)
	if len(pat.Rows)+len(notPat.Rows) != f.Size() {
		t.Fatalf("eq and ne of a pattern cover %d devices, want %d", len(pat.Rows)+len(notPat.Rows), f.Size())
	}
	recent := run(t, f, `(select (name last_seen) (from device (where device (ge last_seen (datetime now-1h)))))`)
	old := run(t, f, `(select (name) (from device (where device (not (ge last_seen (datetime now-1h))))))`)
	if len(recent.Rows) == 0 || len(recent.Rows)+len(old.Rows) != f.Size() {
		t.Fatalf("seen in the last hour %d, not %d, of %d", len(recent.Rows), len(old.Rows), f.Size())
	}
	for _, v := range column(t, recent, "last_seen") {
		if fixedNow.Sub(v.(time.Time)) > time.Hour {
			t.Fatalf("last_seen %v is older than an hour", v)
		}
	}
}

func TestRunOrderAndLimit(t *testing.T) {
	f := newFleet(t, 200, 7)
	res := run(t, f, `(select (name) (from device) (order_by last_seen desc) (limit 5))`)
	if len(res.Rows) != 5 {
		t.Fatalf("%d rows, want 5", len(res.Rows))
	}
	all := run(t, f, `(select (name last_seen) (from device) (order_by last_seen desc))`)
	seen := column(t, all, "last_seen")
	for k := 1; k < len(seen); k++ {
		if seen[k].(time.Time).After(seen[k-1].(time.Time)) {
			t.Fatalf("row %d seen %v after row %d %v: not descending", k, seen[k], k-1, seen[k-1])
		}
	}
	if len(res.Columns) != 1 {
		t.Fatalf("columns %v: the sort key leaked into the output", res.Columns)
	}
	if got := run(t, f, `(select (name) (from device) (limit 0))`); len(got.Rows) != 0 {
		t.Fatalf("limit 0 returned %d rows", len(got.Rows))
	}
}

// TestRunWithKeepsObjectsWithActivity: with is an inner join, and its aggregates
// are per object.
func TestRunWithKeepsObjectsWithActivity(t *testing.T) {
	f := newFleet(t, 300, 8)
	withCrashes := run(t, f, `(select (name number_of_crash_events total_number_of_crashes) (from device (with crash (compute number_of_crash_events total_number_of_crashes))))`)
	if len(withCrashes.Rows) == 0 || len(withCrashes.Rows) >= f.Size() {
		t.Fatalf("%d of %d devices have crashes: want some, not all", len(withCrashes.Rows), f.Size())
	}
	for _, r := range withCrashes.Rows {
		events, total := r[1].(int64), r[2].(int64)
		if events < 1 || total < events {
			t.Fatalf("device %v: %d crash events, %d crashes", r[0], events, total)
		}
	}
	ev := run(t, f, `(select ((crash (number_of_crashes)) (device (name))) (from (crash device)))`)
	var sum int64
	for _, v := range column(t, ev, "crash.number_of_crashes") {
		sum += v.(int64)
	}
	var agg int64
	for _, v := range column(t, withCrashes, "total_number_of_crashes") {
		agg += v.(int64)
	}
	if sum != agg {
		t.Fatalf("crash events sum to %d, per-device aggregates to %d", sum, agg)
	}
}

func TestRunEventsBetween(t *testing.T) {
	f := newFleet(t, 100, 9)
	res := run(t, f, `(select ((session (end_time)) (user (name))) (from (session user) (between now-2d now-1d)))`)
	if len(res.Rows) == 0 {
		t.Fatal("no session ended between two days and one day ago")
	}
	for _, v := range column(t, res, "session.end_time") {
		end := v.(time.Time)
		if end.Before(fixedNow.Add(-48*time.Hour)) || !end.Before(fixedNow.Add(-24*time.Hour)) {
			t.Fatalf("end_time %v outside the window", end)
		}
	}
}

func TestRunHonoursContext(t *testing.T) {
	f := newFleet(t, 5000, 10)
	q, err := nxql.Compile(`(select (name) (from device (with session (compute number_of_sessions))))`, nxql.NewSchema())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Run(ctx, fleetSource{f}, nxql.RunOptions{Now: fixedNow}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}
