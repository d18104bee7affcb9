package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

const day = 24 * time.Hour

// pruning is a migrated schema and the pruner's lease on it.
type pruning struct {
	pool  *pgxpool.Pool
	lease *store.PrunerLease
	now   time.Time
}

func newPruning(t *testing.T) *pruning {
	t.Helper()
	pool := testenv.Postgres(t)
	lease, ok, err := store.New(pool).TryPrunerLease(context.Background())
	if err != nil || !ok {
		t.Fatalf("pruner lease: %v %v", ok, err)
	}
	t.Cleanup(func() { lease.Release(context.Background()) })
	return &pruning{pool: pool, lease: lease, now: time.Now().UTC()}
}

func (p *pruning) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := p.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// ago is the time d before the test's now.
func (p *pruning) ago(d time.Duration) time.Time { return p.now.Add(-d) }

// ids lists a column of a table, sorted.
func (p *pruning) ids(t *testing.T, sql string) []string {
	t.Helper()
	rows, _ := p.pool.Query(context.Background(), sql)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	slices.Sort(out)
	return out
}

// drain runs batches of limit until one is not full, adding up what they deleted.
func drain(t *testing.T, limit int, batch func(after store.Cursor) (store.Pruned, error)) (map[string]int64, int) {
	t.Helper()
	total := map[string]int64{}
	var after store.Cursor
	for n := 1; ; n++ {
		p, err := batch(after)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range p.Rows {
			total[k] += v
		}
		if !p.More {
			return total, n
		}
		if n > 100 {
			t.Fatal("the batches never end")
		}
		after = p.Next
	}
}

func TestPruneWebhookDeliveriesInBatches(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	for i, age := range []time.Duration{40 * day, 35 * day, 31 * day, 29 * day, time.Hour} {
		p.exec(t, `INSERT INTO webhook_deliveries (dedupe_key, webhook_id, source, received_at, processed_at, outcome)
			VALUES ($1, 'wh', 'nexthink', $2, $2, 'opened')`, fmt.Sprintf("k%d", i), p.ago(age))
	}
	before := p.ago(30 * day)
	// Two per batch: the first two batches are full, the third finds what is left.
	var got []store.Pruned
	for {
		b, err := p.lease.PruneWebhookDeliveries(ctx, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b)
		if !b.More {
			break
		}
	}
	if len(got) != 2 || got[0].Rows[store.TableWebhookDeliveries] != 2 || !got[0].More ||
		got[1].Rows[store.TableWebhookDeliveries] != 1 || got[1].More {
		t.Errorf("batches: got %+v, want 2 (full) then 1", got)
	}
	if left := p.ids(t, `SELECT dedupe_key FROM webhook_deliveries`); !slices.Equal(left, []string{"k3", "k4"}) {
		t.Errorf("left: got %v, want the two younger than 30 days", left)
	}
}

// TestPruneProactiveEvents: closed, suppressed and unresolved events past their
// retention go with their deliveries and attempts; an open event stays until its own
// (longer) retention; an event with a callback still pending stays, and so does the
// newest event of each subject and monitor, whatever its age.
func TestPruneProactiveEvents(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	event := func(id, status, subject string, created, updated time.Duration) {
		p.exec(t, `INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, subject_key,
				alert, message, created_at, updated_at)
			VALUES ($1, $2, 'nexthink', 'wh', 'k', 'Outlook crashes', 'outlook crashes', $3, '{}', 'm', $4, $5)`,
			id, status, subject, p.ago(created), p.ago(updated))
	}
	p.exec(t, `INSERT INTO proactive_subscriptions (id, origin, url) VALUES ('sub_config', 'config', 'https://bot.example.com/')`)
	delivery := func(id int, event, state string, attempts int) {
		p.exec(t, `INSERT INTO proactive_deliveries (id, event_id, kind, body, state, attempts, subscription_id)
			VALUES ($1, $2, 'opened', '{}', $3, $4, 'sub_config')`, id, event, state, attempts)
		for a := 1; a <= attempts; a++ {
			p.exec(t, `INSERT INTO proactive_delivery_attempts (delivery_id, attempt, started_at, duration_ms) VALUES ($1, $2, now(), 5)`, id, a)
		}
	}
	event("a_old_closed", "closed", "user:a", 50*day, 40*day) // pruned
	delivery(1, "a_old_closed", "delivered", 2)
	event("a_suppressed", "suppressed", "user:a", 45*day, 45*day) // pruned: never sent
	event("a_recent", "closed", "user:a", 5*day, 4*day)           // kept: young
	event("b_only", "closed", "user:b", 50*day, 40*day)           // kept: the newest of user:b
	event("c_pending", "closed", "user:c", 50*day, 40*day)        // kept: its callback is pending
	delivery(2, "c_pending", "pending", 1)
	event("c_newer", "closed", "user:c", 10*day, 10*day)
	event("d_unresolved", "unresolved", "device:d", 40*day, 40*day) // pruned
	event("e_open_40d", "open", "user:e", 40*day, 40*day)           // kept: open, within 90 days
	event("e_open_100d", "open", "user:e", 100*day, 100*day)        // pruned by the open retention
	delivery(3, "e_open_100d", "dead", 3)
	event("f_open_100d", "open", "user:f", 100*day, 100*day) // kept: the newest of user:f

	closed, _ := drain(t, 2, func(after store.Cursor) (store.Pruned, error) {
		return p.lease.PruneClosedProactiveEvents(ctx, p.ago(30*day), after, 2)
	})
	open, _ := drain(t, 2, func(after store.Cursor) (store.Pruned, error) {
		return p.lease.PruneOpenProactiveEvents(ctx, p.ago(90*day), after, 2)
	})
	want := []string{"a_recent", "b_only", "c_newer", "c_pending", "e_open_40d", "f_open_100d"}
	if left := p.ids(t, `SELECT id FROM proactive_events`); !slices.Equal(left, want) {
		t.Errorf("events left: got %v, want %v", left, want)
	}
	if closed[store.TableProactiveEvents] != 3 || closed[store.TableProactiveDeliveries] != 1 || closed[store.TableProactiveDeliveryAttempts] != 2 {
		t.Errorf("closed events pruned: got %v, want 3 events, 1 delivery, 2 attempts", closed)
	}
	if open[store.TableProactiveEvents] != 1 || open[store.TableProactiveDeliveries] != 1 || open[store.TableProactiveDeliveryAttempts] != 3 {
		t.Errorf("open events pruned: got %v, want 1 event, 1 delivery, 3 attempts", open)
	}
	if left := p.ids(t, `SELECT event_id FROM proactive_deliveries`); !slices.Equal(left, []string{"c_pending"}) {
		t.Errorf("deliveries left: got %v, want the pending one", left)
	}
	var attempts int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM proactive_delivery_attempts`).Scan(&attempts); err != nil || attempts != 1 {
		t.Errorf("attempts left: got %d %v, want the pending delivery's 1", attempts, err)
	}
}

// TestPruneWalksPastKeptEvents: when a batch's rows are all kept, the next batch
// starts after them, so the kept rows do not stop the pruning behind them.
func TestPruneWalksPastKeptEvents(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	for i := range 5 { // the oldest five, each the newest of its subject: kept
		p.exec(t, `INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, subject_key,
				alert, message, created_at, updated_at)
			VALUES ($1, 'closed', 'nexthink', 'wh', 'k', 'm', 'm', $2, '{}', 'm', $3, $3)`,
			fmt.Sprintf("kept%d", i), fmt.Sprintf("user:%d", i), p.ago(60*day-time.Duration(i)*time.Minute))
	}
	p.exec(t, `INSERT INTO proactive_events (id, status, source, webhook_id, dedupe_key, monitor, monitor_key, subject_key,
			alert, message, created_at, updated_at)
		VALUES ('gone', 'suppressed', 'nexthink', 'wh', 'k', 'm', 'm', 'user:0', '{}', 'm', $1, $1)`, p.ago(40*day))
	got, batches := drain(t, 2, func(after store.Cursor) (store.Pruned, error) {
		return p.lease.PruneClosedProactiveEvents(ctx, p.ago(30*day), after, 2)
	})
	// Six rows, two a batch: three full batches, then one that finds the end.
	if got[store.TableProactiveEvents] != 1 || batches != 4 {
		t.Errorf("got %v in %d batches, want the one suppressed event in 4 batches", got, batches)
	}
}

// TestPruneExecutionsAndKeys: keys of final executions older than their retention
// go; a key of an execution still running stays, however old; final executions past
// theirs go with their states (and any key left); executions not final never go.
func TestPruneExecutionsAndKeys(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	execution := func(id, status string, age time.Duration, states int) {
		p.exec(t, `INSERT INTO executions (id, remote_action, instance, collector_uid, device_name, status, created_at, updated_at, expires_at)
			VALUES ($1, '#a', 'eu', 'uid', 'PC', $2, $3, $3, $3)`, id, status, p.ago(age))
		for v := 1; v <= states; v++ {
			p.exec(t, `INSERT INTO execution_states (execution_id, version, status, source) VALUES ($1, $2, $3, 'poller')`, id, v, status)
		}
	}
	key := func(k, execution string, age time.Duration) {
		p.exec(t, `INSERT INTO idempotency_keys (api_key_id, key, request_hash, execution_id, created_at) VALUES ('key_1', $1, 'h', $2, $3)`,
			k, execution, p.ago(age))
	}
	execution("ex_final_old", "success", 100*day, 3)
	key("k_final_old", "ex_final_old", 100*day) // goes with the keys
	execution("ex_expired_old", "expired", 95*day, 2)
	execution("ex_open_old", "waiting_for_device", 100*day, 2) // never pruned
	key("k_open_old", "ex_open_old", 100*day)                  // kept: its execution still runs
	execution("ex_final_recent", "failure", 10*day, 2)
	key("k_final_2d", "ex_final_recent", 2*day) // goes: older than a day
	execution("ex_final_new", "success", time.Hour, 2)
	key("k_final_1h", "ex_final_new", time.Hour) // kept: younger than a day

	keys, _ := drain(t, 1, func(store.Cursor) (store.Pruned, error) {
		return p.lease.PruneIdempotencyKeys(ctx, p.ago(day), 1)
	})
	if keys[store.TableIdempotencyKeys] != 2 {
		t.Errorf("keys pruned: got %v, want 2", keys)
	}
	if left := p.ids(t, `SELECT key FROM idempotency_keys`); !slices.Equal(left, []string{"k_final_1h", "k_open_old"}) {
		t.Errorf("keys left: got %v", left)
	}
	key("k_late", "ex_expired_old", 95*day) // as if the keys' retention were longer
	execs, _ := drain(t, 1, func(store.Cursor) (store.Pruned, error) {
		return p.lease.PruneExecutions(ctx, p.ago(90*day), 1)
	})
	if execs[store.TableExecutions] != 2 || execs[store.TableExecutionStates] != 5 || execs[store.TableIdempotencyKeys] != 1 {
		t.Errorf("executions pruned: got %v, want 2 executions, 5 states, 1 key", execs)
	}
	if left := p.ids(t, `SELECT id FROM executions`); !slices.Equal(left, []string{"ex_final_new", "ex_final_recent", "ex_open_old"}) {
		t.Errorf("executions left: got %v", left)
	}
	if left := p.ids(t, `SELECT DISTINCT execution_id FROM execution_states`); !slices.Equal(left, []string{"ex_final_new", "ex_final_recent", "ex_open_old"}) {
		t.Errorf("states left: got %v", left)
	}
}

func auditAt(t *testing.T, p *pruning, age time.Duration, device string) {
	t.Helper()
	p.exec(t, `INSERT INTO remote_action_audit (at, remote_action, device, outcome, params) VALUES ($1, '#a', $2, 'triggered', '{"k":"v"}')`,
		p.ago(age), device)
}

// TestPruneAuditExportsFirst: with an export, a batch is deleted only after the
// export took it; a failing export deletes nothing.
func TestPruneAuditExportsFirst(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	for i, age := range []time.Duration{400 * day, 390 * day, 380 * day, 10 * day} {
		auditAt(t, p, age, fmt.Sprintf("PC-%d", i))
	}
	before := p.ago(365 * day)
	_, err := p.lease.PruneAudit(ctx, before, 2, func([]store.AuditRecord) error { return errors.New("disk full") })
	if err == nil {
		t.Fatal("a failing export: got no error")
	}
	if left := p.ids(t, `SELECT device FROM remote_action_audit`); len(left) != 4 {
		t.Errorf("after a failing export: got %v, want every record", left)
	}
	var exported []string
	got, _ := drain(t, 2, func(store.Cursor) (store.Pruned, error) {
		return p.lease.PruneAudit(ctx, before, 2, func(recs []store.AuditRecord) error {
			for _, r := range recs {
				if r.Params["k"] != "v" {
					t.Errorf("exported record %+v: want its params", r)
				}
				exported = append(exported, r.Device)
			}
			return nil
		})
	})
	if got[store.TableAudit] != 3 || !slices.Equal(exported, []string{"PC-0", "PC-1", "PC-2"}) {
		t.Errorf("got %v deleted, %v exported; want the three oldest, oldest first", got, exported)
	}
	if left := p.ids(t, `SELECT device FROM remote_action_audit`); !slices.Equal(left, []string{"PC-3"}) {
		t.Errorf("left: got %v", left)
	}
	auditAt(t, p, 400*day, "PC-4")
	if got, err := p.lease.PruneAudit(ctx, before, 10, nil); err != nil || got.Rows[store.TableAudit] != 1 || got.More {
		t.Errorf("without export: got %+v %v, want 1 deleted", got, err)
	}
}

func TestPruneDiagnoses(t *testing.T) {
	p := newPruning(t)
	db := store.New(p.pool)
	ctx := context.Background()
	for i, age := range []time.Duration{31 * day, 40 * day, 29 * day, time.Minute} {
		err := db.SaveDiagnosis(ctx, store.Diagnosis{ID: fmt.Sprintf("d%d", i), Topic: "outlook", CollectorUID: "uid", Instance: "eu",
			DeviceName: "PC", DiagnosedAt: p.ago(age), Source: "live", Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := drain(t, 1, func(store.Cursor) (store.Pruned, error) { return p.lease.PruneDiagnoses(ctx, p.ago(30*day), 1) })
	if got[store.TableDiagnoses] != 2 {
		t.Errorf("got %v, want 2", got)
	}
	if left := p.ids(t, `SELECT id FROM diagnoses`); !slices.Equal(left, []string{"d2", "d3"}) {
		t.Errorf("left: got %v", left)
	}
	if d, err := db.LatestDiagnosis(ctx, "outlook", "uid", "eu", p.ago(time.Hour)); err != nil || d.ID != "d3" {
		t.Errorf("latest diagnosis: got %v %v, want d3", d.ID, err)
	}
}

// TestPruneRateLimits walks the keys one at a time: only rows whose time passed more
// than the retention ago go; an active limit stays.
func TestPruneRateLimits(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	for key, tat := range map[string]time.Duration{"a_stale": -2 * time.Hour, "b_passed": -10 * time.Minute,
		"c_active": 30 * time.Second, "d_stale": -3 * day} {
		p.exec(t, `INSERT INTO rate_limits (key, tat) VALUES ($1, $2)`, key, p.now.Add(tat))
	}
	got, batches := drain(t, 1, func(after store.Cursor) (store.Pruned, error) {
		return p.lease.PruneRateLimits(ctx, p.ago(time.Hour), after, 1)
	})
	if got[store.TableRateLimits] != 2 || batches != 5 {
		t.Errorf("got %v in %d batches, want 2 in 5 (one key each, then the end)", got, batches)
	}
	if left := p.ids(t, `SELECT key FROM rate_limits`); !slices.Equal(left, []string{"b_passed", "c_active"}) {
		t.Errorf("left: got %v", left)
	}
	lease, err := store.New(p.pool).LeaseRate(ctx, "c_active", time.Minute, 0, 0, 1)
	if err != nil || lease.Granted != 0 {
		t.Errorf("the active limit: got %+v %v, want it still limiting", lease, err)
	}
}

// TestPruneDiscoveryRuns keeps the newest runs of each instance, and a run still
// going whatever its place.
func TestPruneDiscoveryRuns(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	// trigger labels each run for the test.
	run := func(instance, outcome string, age time.Duration) {
		p.exec(t, `INSERT INTO discovery_runs (instance, trigger, started_at, outcome) VALUES ($1, $2, $3, $4)`,
			instance, fmt.Sprintf("%s %s %s", instance, outcome, age), p.ago(age), outcome)
	}
	run("eu", "running", 10*time.Hour) // abandoned long ago, still marked running: kept
	for h := 5; h >= 1; h-- {
		run("eu", "success", time.Duration(h)*time.Hour)
	}
	run("us", "failure", 100*day)
	got, _ := drain(t, 2, func(store.Cursor) (store.Pruned, error) { return p.lease.PruneDiscoveryRuns(ctx, 2, 2) })
	if got[store.TableDiscoveryRuns] != 3 {
		t.Errorf("got %v, want 3", got)
	}
	want := []string{"eu running 10h0m0s", "eu success 1h0m0s", "eu success 2h0m0s", "us failure 2400h0m0s"}
	if left := p.ids(t, `SELECT trigger FROM discovery_runs`); !slices.Equal(left, want) {
		t.Errorf("left: got %v, want %v", left, want)
	}
}

// TestOnePrunerLease: the lease is exclusive until released.
func TestOnePrunerLease(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	db := store.New(p.pool)
	if _, ok, err := db.TryPrunerLease(ctx); ok || err != nil {
		t.Fatalf("second lease: got %v %v, want refused", ok, err)
	}
	p.lease.Release(ctx)
	l, ok, err := db.TryPrunerLease(ctx)
	if !ok || err != nil {
		t.Fatalf("after release: got %v %v, want the lease", ok, err)
	}
	l.Release(ctx)
}

func TestEachAuditRecord(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	for i, age := range []time.Duration{3 * day, 2 * day, day, time.Hour} {
		auditAt(t, p, age, fmt.Sprintf("PC-%d", i))
	}
	var got []string
	err := store.New(p.pool).EachAuditRecord(ctx, p.ago(2*day+time.Minute), p.ago(2*time.Hour), func(r store.AuditRecord) error {
		got = append(got, r.Device)
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"PC-1", "PC-2"}) {
		t.Errorf("got %v %v, want PC-1 and PC-2 in order", got, err)
	}
	stop := errors.New("stop")
	n := 0
	err = store.New(p.pool).EachAuditRecord(ctx, time.Time{}, time.Time{}, func(store.AuditRecord) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("an error from fn: got %v after %d, want it returned after 1", err, n)
	}
}

func TestPruneLastKnownValues(t *testing.T) {
	p := newPruning(t)
	db := store.New(p.pool)
	ctx := context.Background()
	for i, age := range []time.Duration{31 * day, 40 * day, 29 * day, time.Minute} {
		err := db.SaveKnownValues(ctx, "eu", fmt.Sprintf("uid-%d", i), []store.KnownValue{{Field: "f", Value: []byte(`1`), CollectedAt: p.ago(age)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := drain(t, 1, func(store.Cursor) (store.Pruned, error) { return p.lease.PruneLastKnownValues(ctx, p.ago(30*day), 1) })
	if got[store.TableLastKnownValues] != 2 {
		t.Errorf("got %v, want 2", got)
	}
	if left := p.ids(t, `SELECT collector_uid FROM last_known_values`); !slices.Equal(left, []string{"uid-2", "uid-3"}) {
		t.Errorf("left: got %v", left)
	}
}

// TestPruneV6Routes: the routes nobody learned or confirmed within the retention go,
// in batches; a route a later discovery confirmed (the same Engine, learned again)
// stays, whichever process wrote it first, and so does one learned recently.
func TestPruneV6Routes(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	db := store.New(p.pool)
	old := p.ago(3 * day)
	var routes []store.V6Route
	for _, k := range []string{"name:gone-1", "uid:gone-1", "name:gone-2", "uid:gone-2", "name:alive", "uid:alive"} {
		routes = append(routes, store.V6Route{Key: k, Engine: "engine-1", LearnedAt: old})
	}
	if err := db.SaveV6Routes(ctx, "dc", routes); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveV6Routes(ctx, "us6", []store.V6Route{{Key: "name:gone-3", Engine: "engine-2", LearnedAt: old},
		{Key: "name:new", Engine: "engine-2", LearnedAt: p.ago(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	// The latest discovery still lists "alive", on the same Engine: its export
	// saves its routes again.
	if err := db.SaveV6Routes(ctx, "dc", []store.V6Route{{Key: "name:alive", Engine: "engine-1", LearnedAt: p.ago(time.Minute)},
		{Key: "uid:alive", Engine: "engine-1", LearnedAt: p.ago(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	got, batches := drain(t, 2, func(store.Cursor) (store.Pruned, error) {
		return p.lease.PruneV6Routes(ctx, p.ago(day), 2)
	})
	if got[store.TableV6Routes] != 5 || batches != 3 {
		t.Errorf("got %v in %d batches, want 5 in 3 (2, 2, then 1)", got, batches)
	}
	want := []string{"dc name:alive", "dc uid:alive", "us6 name:new"}
	if left := p.ids(t, `SELECT instance || ' ' || device_key FROM v6_routes`); !slices.Equal(left, want) {
		t.Errorf("left: got %v, want %v", left, want)
	}
	kept, err := db.V6Routes(ctx, "dc", []string{"name:alive"})
	if err != nil || kept["name:alive"].Engine != "engine-1" {
		t.Errorf("the confirmed route: got %+v %v", kept, err)
	}
}

// TestPruneV6Engines: the Engines no process reported or listed within the retention
// go, in batches, whether reached, down or only listed; one reported or listed since
// stays.
func TestPruneV6Engines(t *testing.T) {
	p := newPruning(t)
	ctx := context.Background()
	db := store.New(p.pool)
	old := p.ago(3 * day)
	save := func(e store.V6Engine) {
		t.Helper()
		if err := db.SaveV6Engine(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	list := func(instance string, at time.Time, engines ...string) {
		t.Helper()
		if err := db.ListV6Engines(ctx, instance, engines, at); err != nil {
			t.Fatal(err)
		}
	}
	save(store.V6Engine{Instance: "dc", Engine: "gone-up", LastSuccessAt: &old, ObservedAt: old})
	save(store.V6Engine{Instance: "dc", Engine: "gone-down", Down: true, DownSince: &old, ConsecutiveFailures: 3, ObservedAt: old})
	list("dc", old, "gone-listed", "relisted", "reported")
	save(store.V6Engine{Instance: "dc", Engine: "reported", ConsecutiveFailures: 1, LastError: "timeout", ObservedAt: p.ago(time.Hour)})
	list("dc", p.ago(time.Minute), "relisted") // a process started since lists it again
	list("us6", p.ago(time.Hour), "new")
	got, batches := drain(t, 2, func(store.Cursor) (store.Pruned, error) {
		return p.lease.PruneV6Engines(ctx, p.ago(day), 2)
	})
	if got[store.TableV6Engines] != 3 || batches != 2 {
		t.Errorf("got %v in %d batches, want 3 in 2 (2, then 1)", got, batches)
	}
	want := []string{"dc relisted", "dc reported", "us6 new"}
	if left := p.ids(t, `SELECT instance || ' ' || engine FROM v6_engines`); !slices.Equal(left, want) {
		t.Errorf("left: got %v, want %v", left, want)
	}
}
