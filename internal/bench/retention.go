package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// retentionScenario measures the pruner: env.RetentionRows rows past their retention,
// spread over every table it prunes, are loaded with COPY beside rows it must keep;
// identification runs through `dexbridge run ingress devices` at env.RetentionRate,
// open loop, for env.Duration before the pruner starts, again while `dexbridge run
// pruner` (a process of its own, default retention settings) deletes them, and once
// more after its run. It reports identification's latency before, during and after
// pruning, the rows pruned per second (from the pruner's own log line of the run),
// and whether every row that had to stay is still there.
func retentionScenario(ctx context.Context, env Env) ([]Row, error) {
	st, key, users, err := startIdentifyStack(ctx, env)
	if err != nil {
		return nil, err
	}
	defer st.close()
	db, dep := st.db, st.dep
	fmt.Fprintf(env.Log, "loading %d expired rows with COPY\n", env.RetentionRows)
	loadStart := time.Now()
	seeded, err := seedRetention(ctx, db.pool, env.RetentionRows)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	loadTook := time.Since(loadStart)

	base := "http://" + dep.listen
	stopServe, _, err := dep.serve(ctx, env, base, "ingress", "devices")
	if err != nil {
		return nil, err
	}
	defer stopServe()
	identify := identifyRequest(identifyClient(), base, key, users)
	fmt.Fprintf(env.Log, "warm-up\n")
	openLoop(ctx, env.RetentionRate, 5*time.Second, identify)
	fmt.Fprintf(env.Log, "identification at %g/s for %s, no pruning\n", env.RetentionRate, env.Duration)
	before := openLoop(ctx, env.RetentionRate, env.Duration, identify)

	p, err := startPruner(ctx, env, dep)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := p.wait(ctx, "pruning", time.Minute); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "identification at %g/s for %s, while pruning\n", env.RetentionRate, env.Duration)
	during := openLoop(ctx, env.RetentionRate, env.Duration, identify)
	overlapped := !p.seen("pruning run") && !p.seen("pruning run failed")
	fmt.Fprintf(env.Log, "waiting for the pruning run to end\n")
	if err := p.wait(ctx, "pruning run", 30*time.Minute); err != nil {
		return nil, err
	}
	run := p.line("pruning run")
	p.stop()
	// After as before: what the machine gives without the pruner, to tell the
	// pruner's cost from the noise of a shared machine.
	fmt.Fprintf(env.Log, "identification at %g/s for %s, after pruning\n", env.RetentionRate, env.Duration)
	after := openLoop(ctx, env.RetentionRate, env.Duration, identify)
	stopServe()

	pruned, _ := run["rows"].(float64)
	took := time.Duration(asFloat(run["duration_ms"])) * time.Millisecond
	left, err := retentionLeft(ctx, db.pool)
	if err != nil {
		return nil, err
	}
	intact := left.kept == seeded.kept && left.expired == 0
	return []Row{
		setupRow("retention", env, env.Fleet, "dexbridge run ingress devices, and dexbridge run pruner with the default batch (1000 rows) and pause (100 ms)", ""),
		{"retention", "expired rows loaded (COPY)", fmt.Sprintf("%s in %.1f s, beside %s to keep", thousands(seeded.expired), loadTook.Seconds(), thousands(seeded.kept)), "-", ""},
		{"retention", "expired rows by table", seeded.describe(), "-", ""},
		{"retention", "offered identification (open loop)", fmt.Sprintf("%g req/s for %s while pruning", env.RetentionRate, env.Duration),
			"the same before / after pruning", ""},
		{"retention", "identify latency p50", ms(during.percentile(0.50)), ms(before.percentile(0.50)) + " / " + ms(after.percentile(0.50)), ""},
		{"retention", "identify latency p99", ms(during.percentile(0.99)), ms(before.percentile(0.99)) + " / " + ms(after.percentile(0.99)), ""},
		{"retention", "identify latency max", ms(during.percentile(1)), ms(before.percentile(1)) + " / " + ms(after.percentile(1)), ""},
		{"retention", "identify failed or not 200", fmt.Sprintf("%d of %d", during.failed, during.sent),
			fmt.Sprintf("%d of %d / %d of %d", before.failed, before.sent, after.failed, after.sent), ""},
		{"retention", "pruning still going when the measurement ended", yesNo(overlapped), "-", ""},
		{"retention", "rows pruned (the pruner's log)", fmt.Sprintf("%s in %.1f s, %s batches", thousands(int64(pruned)), took.Seconds(), fmt.Sprint(run["batches"])), "-", ""},
		{"retention", "rows pruned per second", fmt.Sprintf("%.0f", pruned/took.Seconds()), "-", ""},
		{"retention", "rows that must stay, still there", fmt.Sprintf("%s of %s (expired left: %d)", thousands(left.kept), thousands(seeded.kept), left.expired), "-",
			target("all kept, none expired left", intact)},
	}, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no: the measurement saw the end of the run"
}

func asFloat(v any) float64 {
	f, _ := v.(float64)
	return f
}

// retentionCounts counts rows by whether the pruner must delete or keep them.
type retentionCounts struct {
	expired, kept int64
	byTable       map[string]int64 // expired rows by table
}

func (c retentionCounts) describe() string {
	var names []string
	for t := range c.byTable {
		names = append(names, t)
	}
	sort.Slice(names, func(i, j int) bool { return c.byTable[names[i]] > c.byTable[names[j]] })
	var parts []string
	for _, t := range names {
		parts = append(parts, fmt.Sprintf("%s %s", t, thousands(c.byTable[t])))
	}
	return strings.Join(parts, ", ")
}

// seedRetention loads n rows past the default retention (about: the shares below of
// a million) and, beside them, rows the pruner must keep: young rows of each table,
// old executions still waiting for their device with their idempotency keys, and
// the newest proactive event of each subject. The rows of the identify load (users,
// devices, the shared rate limit) are not counted.
func seedRetention(ctx context.Context, pool *pgxpool.Pool, n int) (retentionCounts, error) {
	share := func(per float64) int { return int(per * float64(n)) }
	nWebhooks, nEvents, nExec, nKeys := share(0.15), share(0.10), share(0.10), share(0.05)
	nAudit, nDiag, nRates, nRoutes := share(0.10), share(0.08), share(0.02), share(0.02)
	const kept = 1000 // young rows, and kept old ones, per kind
	const subjects = 1000
	now := time.Now()
	old := func(i int) time.Time { return now.Add(-400*24*time.Hour - time.Duration(i)*time.Second) }
	young := func(i int) time.Time { return now.Add(-time.Hour - time.Duration(i)*time.Second) }
	c := retentionCounts{byTable: map[string]int64{}}
	copyRows := func(table string, cols []string, rows int, expired bool, row func(i int) []any) error {
		got, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == rows {
					return nil, nil
				}
				i++
				return row(i - 1), nil
			}
		}()))
		if err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		if expired {
			c.expired += got
			c.byTable[table] += got
		} else {
			c.kept += got
		}
		return nil
	}
	type load struct {
		table   string
		cols    []string
		rows    int
		expired bool
		row     func(i int) []any
	}
	webhook := func(prefix string, at func(int) time.Time) func(i int) []any {
		return func(i int) []any {
			return []any{fmt.Sprintf("%s-%d", prefix, i), "wh_bench", "nexthink", at(i), at(i), "opened"}
		}
	}
	event := func(prefix, status string, at func(int) time.Time) func(i int) []any {
		return func(i int) []any {
			return []any{fmt.Sprintf("%s-%d", prefix, i), status, "nexthink", "wh_bench", "dk", "Slow PC", "slow pc",
				fmt.Sprintf("user:u%d", i%subjects), `{"monitor":"Slow PC"}`, "Hi", at(i), at(i)}
		}
	}
	execution := func(prefix, status string) func(i int) []any {
		return func(i int) []any {
			return []any{fmt.Sprintf("%s-%d", prefix, i), "#repair_onedrive", "eu", "uid", "PC", status, old(i), old(i), old(i)}
		}
	}
	key := func(prefix string) func(i int) []any {
		return func(i int) []any {
			return []any{"key_bench", fmt.Sprintf("%s-%d", prefix, i), "h", fmt.Sprintf("%s-%d", prefix, i), old(i)}
		}
	}
	audit := func(at func(int) time.Time) func(i int) []any {
		return func(i int) []any { return []any{at(i), "#repair_onedrive", fmt.Sprintf("PC-%d", i), "triggered"} }
	}
	diagnosis := func(prefix string, at func(int) time.Time) func(i int) []any {
		return func(i int) []any {
			return []any{fmt.Sprintf("%s-%d", prefix, i), "outlook", "uid", "eu", "PC", at(i), "live", `{"verdict":"healthy"}`}
		}
	}
	route := func(prefix string, at func(int) time.Time) func(i int) []any {
		return func(i int) []any { return []any{"bench_v6", fmt.Sprintf("name:%s-%d", prefix, i), "engine-1", at(i)} }
	}
	var (
		webhookCols   = []string{"dedupe_key", "webhook_id", "source", "received_at", "processed_at", "outcome"}
		eventCols     = []string{"id", "status", "source", "webhook_id", "dedupe_key", "monitor", "monitor_key", "subject_key", "alert", "message", "created_at", "updated_at"}
		deliveryCols  = []string{"id", "event_id", "kind", "body", "state", "attempts", "subscription_id"}
		attemptCols   = []string{"delivery_id", "attempt", "started_at", "duration_ms"}
		executionCols = []string{"id", "remote_action", "instance", "collector_uid", "device_name", "status", "created_at", "updated_at", "expires_at"}
		stateCols     = []string{"execution_id", "version", "status", "source", "at"}
		keyCols       = []string{"api_key_id", "key", "request_hash", "execution_id", "created_at"}
		auditCols     = []string{"at", "remote_action", "device", "outcome"}
		diagnosisCols = []string{"id", "topic", "collector_uid", "instance", "device_name", "diagnosed_at", "source", "body"}
		routeCols     = []string{"instance", "device_key", "engine", "learned_at"}
	)
	loads := []load{
		{"webhook_deliveries", webhookCols, nWebhooks, true, webhook("old", old)},
		{"webhook_deliveries", webhookCols, kept, false, webhook("young", young)},
		{"proactive_events", eventCols, nEvents, true, event("pe_old", "closed", old)},
		// The newest event of each subject stays, whatever its age: these are younger.
		{"proactive_events", eventCols, subjects, false, event("pe_young", "closed", young)},
		{"proactive_deliveries", deliveryCols, nEvents, true, func(i int) []any {
			return []any{int64(i + 1), fmt.Sprintf("pe_old-%d", i), "opened", "{}", "delivered", 1, "sub_config"}
		}},
		{"proactive_delivery_attempts", attemptCols, nEvents, true, func(i int) []any { return []any{int64(i + 1), 1, old(i), 120} }},
		{"executions", executionCols, nExec, true, execution("ex_old", "success")},
		{"executions", executionCols, kept, false, execution("ex_waiting", "waiting_for_device")},
		{"execution_states", stateCols, 2 * nExec, true, func(i int) []any {
			return []any{fmt.Sprintf("ex_old-%d", i/2), i%2 + 1, []string{"pending", "success"}[i%2], "poller", old(i / 2)}
		}},
		{"execution_states", stateCols, kept, false, func(i int) []any {
			return []any{fmt.Sprintf("ex_waiting-%d", i), 1, "waiting_for_device", "poller", old(i)}
		}},
		{"idempotency_keys", keyCols, nKeys, true, key("ex_old")},
		{"idempotency_keys", keyCols, kept, false, key("ex_waiting")},
		{"remote_action_audit", auditCols, nAudit, true, audit(old)},
		{"remote_action_audit", auditCols, kept, false, audit(young)},
		{"diagnoses", diagnosisCols, nDiag, true, diagnosis("old", old)},
		{"diagnoses", diagnosisCols, kept, false, diagnosis("young", young)},
		{"rate_limits", []string{"key", "tat"}, nRates, true, func(i int) []any { return []any{fmt.Sprintf("bench:stale:%d", i), old(i)} }},
		{"v6_routes", routeCols, nRoutes, true, route("gone", old)},
		{"v6_routes", routeCols, kept, false, route("seen", young)},
	}
	// Every delivery goes to a subscription: the configured callback's, as the
	// process would record it.
	if _, err := pool.Exec(ctx, `INSERT INTO proactive_subscriptions (id, origin, url) VALUES ('sub_config', 'config', '')
		ON CONFLICT (id) DO NOTHING`); err != nil {
		return c, err
	}
	for _, l := range loads {
		if err := copyRows(l.table, l.cols, l.rows, l.expired, l.row); err != nil {
			return c, err
		}
	}
	if _, err := pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('proactive_deliveries', 'id'), $1)`, nEvents+1); err != nil {
		return c, err
	}
	// As autovacuum would soon after a load this size: the planner needs the
	// statistics to use the indexes.
	_, err := pool.Exec(ctx, `ANALYZE`)
	return c, err
}

// retentionLeft counts, after the run, the rows seedRetention meant to be pruned
// that are still there and the rows it meant to stay.
func retentionLeft(ctx context.Context, pool *pgxpool.Pool) (retentionCounts, error) {
	var c retentionCounts
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM webhook_deliveries WHERE dedupe_key LIKE 'old-%')
		+ (SELECT count(*) FROM proactive_events WHERE id LIKE 'pe_old-%')
		+ (SELECT count(*) FROM proactive_deliveries WHERE event_id LIKE 'pe_old-%')
		+ (SELECT count(*) FROM proactive_delivery_attempts)
		+ (SELECT count(*) FROM executions WHERE id LIKE 'ex_old-%')
		+ (SELECT count(*) FROM execution_states WHERE execution_id LIKE 'ex_old-%')
		+ (SELECT count(*) FROM idempotency_keys WHERE key LIKE 'ex_old-%')
		+ (SELECT count(*) FROM remote_action_audit WHERE at < now() - interval '365 days')
		+ (SELECT count(*) FROM diagnoses WHERE id LIKE 'old-%')
		+ (SELECT count(*) FROM rate_limits WHERE key LIKE 'bench:stale:%')
		+ (SELECT count(*) FROM v6_routes WHERE device_key LIKE 'name:gone-%'),
		(SELECT count(*) FROM webhook_deliveries WHERE dedupe_key LIKE 'young-%')
		+ (SELECT count(*) FROM proactive_events WHERE id LIKE 'pe_young-%')
		+ (SELECT count(*) FROM executions WHERE id LIKE 'ex_waiting-%')
		+ (SELECT count(*) FROM execution_states WHERE execution_id LIKE 'ex_waiting-%')
		+ (SELECT count(*) FROM idempotency_keys WHERE key LIKE 'ex_waiting-%')
		+ (SELECT count(*) FROM remote_action_audit WHERE at > now() - interval '1 day')
		+ (SELECT count(*) FROM diagnoses WHERE id LIKE 'young-%')
		+ (SELECT count(*) FROM v6_routes WHERE device_key LIKE 'name:seen-%')`).Scan(&c.expired, &c.kept)
	return c, err
}

// prunerProc is a `dexbridge run pruner` child process whose JSON log lines (at
// info) the scenario reads.
type prunerProc struct {
	cancel context.CancelFunc
	done   chan struct{}
	lines  chan map[string]any
	got    []map[string]any
}

func startPruner(ctx context.Context, env Env, dep *deployment) (*prunerProc, error) {
	natsURL, err := dep.natsURL()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	cmd := dep.command(runCtx, env, "run", "pruner")
	cmd.Env = append(append([]string(nil), dep.env...), "NATS_URL="+natsURL, "LOG_LEVEL=info")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	p := &prunerProc{cancel: cancel, done: make(chan struct{}), lines: make(chan map[string]any, 1024)}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["service"] == "pruner" {
				p.lines <- m
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	return p, nil
}

// drain takes the lines logged so far.
func (p *prunerProc) drain() {
	for {
		select {
		case m := <-p.lines:
			p.got = append(p.got, m)
		default:
			return
		}
	}
}

// line is the first line logged with msg, or nil.
func (p *prunerProc) line(msg string) map[string]any {
	p.drain()
	for _, m := range p.got {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

func (p *prunerProc) seen(msg string) bool { return p.line(msg) != nil }

// wait waits for a line with msg; a failed run is an error.
func (p *prunerProc) wait(ctx context.Context, msg string, within time.Duration) error {
	deadline := time.After(within)
	for {
		if p.seen(msg) {
			return nil
		}
		if m := p.line("pruning run failed"); m != nil {
			return fmt.Errorf("pruning run failed: %v", m["err"])
		}
		select {
		case m := <-p.lines:
			p.got = append(p.got, m)
		case <-p.done:
			p.drain()
			if p.seen(msg) {
				return nil
			}
			return errors.New("dexbridge run pruner exited")
		case <-deadline:
			return fmt.Errorf("no %q from the pruner after %s", msg, within)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *prunerProc) stop() {
	p.cancel()
	<-p.done
}
