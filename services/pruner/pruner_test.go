package pruner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dexbridge/dexbridge/internal/auditlog"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/pruner"
)

const day = 24 * time.Hour

var retention = pruner.Retention{WebhookDeliveries: 30 * day, Audit: 365 * day, Executions: 90 * day, IdempotencyKeys: day}

// seed writes n audit records and n webhook dedupe records past their retention,
// and one of each within it; it returns the old audit records' ids, oldest first.
func seed(t *testing.T, pool *pgxpool.Pool, tag string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i := range n + 1 {
		age := 400*day - time.Duration(i)*time.Minute
		if i == n {
			age = day
		}
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO remote_action_audit (at, remote_action, device, outcome, reason) VALUES (now() - $1 * interval '1 second', '#a', $2, 'triggered', 'r')
			RETURNING id`, age.Seconds(), fmt.Sprintf("%s-%d", tag, i)).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		if i < n {
			ids = append(ids, id)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO webhook_deliveries (dedupe_key, webhook_id, source, received_at, processed_at, outcome)
			VALUES ($1, 'wh', 'nexthink', now(), now() - $2 * interval '1 second', 'opened')`, fmt.Sprintf("%s-%d", tag, i), age.Seconds()); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type observed struct {
	who string
	rep pruner.Report
}

// start runs a pruner until the test ends; its reports go to reports.
func start(t *testing.T, who string, o pruner.Options, reports chan<- observed) context.CancelFunc {
	t.Helper()
	o.Observe = func(r pruner.Report) { reports <- observed{who, r} }
	if o.LeaseRetry == 0 {
		o.LeaseRetry = 20 * time.Millisecond
	}
	if o.Interval == 0 {
		o.Interval = time.Hour // one run per lease taken, in a test
	}
	s, err := pruner.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", who, err)
		}
	})
	return cancel
}

func next(t *testing.T, reports <-chan observed) observed {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(testenv.Patience):
		t.Fatalf("no pruning run within %s", testenv.Patience)
	}
	return observed{}
}

// TestOnePrunerAtATime runs two pruners on one database: one takes the lease and
// prunes everything due, in batches; when its session dies, the other takes over and
// prunes what became due since, and nothing is pruned twice.
func TestOnePrunerAtATime(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	seed(t, pool, "first", 7)
	reports := make(chan observed, 10)
	o := pruner.Options{DB: db, Retention: retention, BatchSize: 3}
	start(t, "a", o, reports)
	start(t, "b", o, reports)

	first := next(t, reports)
	if first.rep.Err != nil || first.rep.Rows[store.TableAudit] != 7 || first.rep.Rows[store.TableWebhookDeliveries] != 7 {
		t.Fatalf("first run (%s): got %+v, want 7 audit records and 7 webhook deliveries", first.who, first.rep)
	}
	// 3 + 3 + 1 a table, and one empty batch for each table with nothing due.
	if first.rep.Batches != 8 {
		t.Errorf("first run: got %d batches, want 8", first.rep.Batches)
	}
	if left := count(t, pool, "remote_action_audit"); left != 1 {
		t.Errorf("audit records left: got %d, want the recent one", left)
	}

	seed(t, pool, "second", 2)
	holder := testenv.LeaseHolder(t, pool, "pruner", "")
	if holder == 0 {
		t.Fatal("PostgreSQL reports no holder of the pruner's lease")
	}
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, holder); err != nil {
		t.Fatal(err)
	}
	second := next(t, reports)
	if second.who == first.who {
		t.Errorf("after the holder's session died: got a run by %s, want the other pruner", second.who)
	}
	if now := testenv.LeaseHolder(t, pool, "pruner", ""); now == holder {
		t.Errorf("the lease is still held by the ended session %d", holder)
	}
	if second.rep.Rows[store.TableAudit] != 2 || second.rep.Rows[store.TableWebhookDeliveries] != 2 {
		t.Errorf("second run: got %+v, want the 2 records of each table due since", second.rep.Rows)
	}
	if left := count(t, pool, "remote_action_audit"); left != 2 {
		t.Errorf("audit records left: got %d, want the 2 recent ones", left)
	}
}

// TestAuditExportedBeforeDeleted exports to a directory: the run's file holds exactly
// the records deleted, oldest first, one JSON line each; the metrics and the one log
// line count them.
func TestAuditExportedBeforeDeleted(t *testing.T) {
	pool := testenv.Postgres(t)
	dir := t.TempDir()
	ids := seed(t, pool, "x", 5)
	var logs testenv.LogBuffer
	m := metrics.New()
	reports := make(chan observed, 1)
	start(t, "a", pruner.Options{DB: store.New(pool), Retention: retention, BatchSize: 2, AuditExport: dir,
		Metrics: m, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, reports)
	rep := next(t, reports).rep
	if rep.Err != nil || rep.Rows[store.TableAudit] != 5 {
		t.Fatalf("got %+v, want 5 audit records pruned", rep)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "remote_action_audit-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("export files: got %v, want one for the run", files)
	}
	got := readExport(t, files[0])
	var gotIDs []int64
	for _, r := range got {
		gotIDs = append(gotIDs, r.ID)
		if r.RemoteAction != "#a" || r.Reason != "r" || r.Outcome != "triggered" || r.At.IsZero() {
			t.Errorf("exported record %+v: want its fields", r)
		}
	}
	if !slices.Equal(gotIDs, ids) {
		t.Errorf("exported ids: got %v, want %v", gotIDs, ids)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: got %v %v, want 0600", fi.Mode(), err)
	}
	if v := testutil.ToFloat64(m.PrunedRows.WithLabelValues(store.TableAudit)); v != 5 {
		t.Errorf("dexbridge_pruned_rows_total{table=remote_action_audit}: got %v, want 5", v)
	}
	if v := testutil.ToFloat64(m.PruningRuns.WithLabelValues("ok")); v != 1 {
		t.Errorf("dexbridge_pruning_runs_total{outcome=ok}: got %v, want 1", v)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "pruning run" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 || lines[0]["level"] != "INFO" || lines[0][store.TableAudit] != float64(5) || lines[0]["rows"] != float64(10) {
		t.Errorf("log: got %v, want one info line with the counts", lines)
	}
}

// TestFailingExportDeletesNothing: when the export cannot be written, no audit record
// is deleted; the other tables are pruned all the same and the run is reported failed.
func TestFailingExportDeletesNothing(t *testing.T) {
	pool := testenv.Postgres(t)
	sub := filepath.Join(t.TempDir(), "export")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	seed(t, pool, "x", 4)
	m := metrics.New()
	reports := make(chan observed, 1)
	o := pruner.Options{DB: store.New(pool), Retention: retention, BatchSize: 2, AuditExport: filepath.Join(sub, "audit.jsonl"), Metrics: m}
	o.Observe = func(r pruner.Report) { reports <- observed{"a", r} }
	o.Interval, o.LeaseRetry = time.Hour, 20*time.Millisecond
	s, err := pruner.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil { // the export's directory goes away after start-up
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rep := next(t, reports).rep
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "audit export") {
		t.Errorf("got error %v, want the export's", rep.Err)
	}
	if n := count(t, pool, "remote_action_audit"); n != 5 || rep.Rows[store.TableAudit] != 0 {
		t.Errorf("audit records: got %d left, %d reported pruned; want all 5 kept", n, rep.Rows[store.TableAudit])
	}
	if n := count(t, pool, "webhook_deliveries"); n != 1 || rep.Rows[store.TableWebhookDeliveries] != 4 {
		t.Errorf("webhook deliveries: got %d left, want the other tables pruned all the same", n)
	}
	if v := testutil.ToFloat64(m.PruningRuns.WithLabelValues("failed")); v != 1 {
		t.Errorf("dexbridge_pruning_runs_total{outcome=failed}: got %v, want 1", v)
	}
}

func readExport(t *testing.T, path string) []auditlog.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditlog.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r auditlog.Record
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestNoExportIntoNowhere: a pruner whose export has no directory does not start.
func TestNoExportIntoNowhere(t *testing.T) {
	_, err := pruner.New(pruner.Options{AuditExport: filepath.Join(t.TempDir(), "missing", "audit.jsonl")})
	if err == nil {
		t.Error("got no error")
	}
}

// TestV6RoutesPruned: the routes of V6 devices no discovery or call has confirmed
// within the retention go, a batch at a time, and the run's log line counts them;
// a route confirmed since (its device still listed) stays.
func TestV6RoutesPruned(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	old := time.Now().Add(-2 * day)
	var routes []store.V6Route
	for i := range 5 {
		routes = append(routes, store.V6Route{Key: fmt.Sprintf("name:gone-%d", i), Engine: "engine-1", LearnedAt: old})
	}
	routes = append(routes, store.V6Route{Key: "name:alive", Engine: "engine-2", LearnedAt: old})
	if err := db.SaveV6Routes(ctx, "dc", routes); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveV6Routes(ctx, "dc", []store.V6Route{{Key: "name:alive", Engine: "engine-2", LearnedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	var logs testenv.LogBuffer
	m := metrics.New()
	reports := make(chan observed, 1)
	start(t, "a", pruner.Options{DB: db, Retention: pruner.Retention{V6Routes: day}, BatchSize: 2, BatchPause: time.Millisecond,
		Metrics: m, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, reports)
	rep := next(t, reports).rep
	if rep.Err != nil || rep.Rows[store.TableV6Routes] != 5 || rep.Batches != 3 {
		t.Fatalf("got %+v, want 5 routes pruned in 3 batches", rep)
	}
	left, err := db.V6Routes(ctx, "dc", []string{"name:alive", "name:gone-0"})
	if err != nil || len(left) != 1 || left["name:alive"].Engine != "engine-2" {
		t.Errorf("left: got %+v %v, want the confirmed route alone", left, err)
	}
	if v := testutil.ToFloat64(m.PrunedRows.WithLabelValues(store.TableV6Routes)); v != 5 {
		t.Errorf("dexbridge_pruned_rows_total{table=v6_routes}: got %v, want 5", v)
	}
	if !strings.Contains(logs.String(), `"v6_routes":5`) {
		t.Errorf("log: got %s, want the run's line to count the routes", logs.String())
	}
}

// TestV6EnginesPruned: the health of V6 Engines no process has reported or listed
// within the retention goes, a batch at a time, counted by the metric and the run's
// log line; an Engine reported or listed since stays, and a retention of 0s keeps
// every row.
func TestV6EnginesPruned(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	old := time.Now().Add(-2 * day)
	for _, e := range []string{"engine-1", "engine-2", "engine-3"} { // removed from the configuration since
		if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "dc", Engine: e, LastSuccessAt: &old, ObservedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ListV6Engines(ctx, "dc", []string{"engine-4", "engine-5"}, old); err != nil {
		t.Fatal(err)
	}
	if err := db.ListV6Engines(ctx, "dc", []string{"engine-5"}, time.Now()); err != nil { // still listed
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.SaveV6Engine(ctx, store.V6Engine{Instance: "us6", Engine: "engine-1", LastSuccessAt: &now, ObservedAt: now}); err != nil {
		t.Fatal(err)
	}
	engines := func() []string {
		t.Helper()
		got, err := db.V6Engines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, e.Instance+"/"+e.Engine)
		}
		return out
	}

	kept := make(chan observed, 1)
	stop := start(t, "keeps", pruner.Options{DB: db, Retention: pruner.Retention{V6Routes: day}}, kept)
	if rep := next(t, kept).rep; rep.Err != nil || rep.Rows[store.TableV6Engines] != 0 {
		t.Fatalf("with v6_engines at 0s: got %+v, want no Engine pruned", rep)
	}
	stop()
	if got := engines(); len(got) != 6 {
		t.Fatalf("with v6_engines at 0s: got %v left, want all 6", got)
	}

	var logs testenv.LogBuffer
	m := metrics.New()
	reports := make(chan observed, 1)
	start(t, "prunes", pruner.Options{DB: db, Retention: pruner.Retention{V6Engines: day}, BatchSize: 2, BatchPause: time.Millisecond,
		Metrics: m, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, reports)
	rep := next(t, reports).rep
	if rep.Err != nil || rep.Rows[store.TableV6Engines] != 4 || rep.Batches != 3 {
		t.Fatalf("got %+v, want 4 Engines pruned in 3 batches", rep)
	}
	if got, want := engines(), []string{"dc/engine-5", "us6/engine-1"}; !slices.Equal(got, want) {
		t.Errorf("left: got %v, want %v", got, want)
	}
	if v := testutil.ToFloat64(m.PrunedRows.WithLabelValues(store.TableV6Engines)); v != 4 {
		t.Errorf("dexbridge_pruned_rows_total{table=v6_engines}: got %v, want 4", v)
	}
	if !strings.Contains(logs.String(), `"v6_engines":4`) {
		t.Errorf("log: got %s, want the run's line to count the Engines", logs.String())
	}
}
