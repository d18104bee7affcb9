package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/services/discovery"
)

// The discovery targets of the issue: the whole run at most 1.3 times the exports
// alone in the same run, and peak RSS under 256 MiB.
const (
	discoveryTargetRatio = 1.3
	discoveryTargetRSS   = 256 << 20
)

// discoveryScenario measures `dexbridge discover` of an instance of n devices into an
// empty cache against, as the baseline, the same five exports at once without the
// load; then identification through `dexbridge run ingress devices` at
// env.RetentionRate, open loop, while a second discovery refreshes the cache, against
// the same identification with no discovery running.
func discoveryScenario(ctx context.Context, env Env, n int) ([]Row, error) {
	st, err := startStack(ctx, env, n, 1_000_000)
	if err != nil {
		return nil, err
	}
	defer st.close()
	s, db, dep := st.sim, st.db, st.dep
	if err := dep.command(ctx, env, "migrate").Run(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}

	fmt.Fprintf(env.Log, "exports alone (baseline)\n")
	baseStart, baseCPU := time.Now(), readCPU(s)
	exported, err := exportOnly(ctx, s)
	if err != nil {
		return nil, err
	}
	baseWall, baseCPU := time.Since(baseStart), readCPU(s).since(baseCPU)

	fmt.Fprintf(env.Log, "dexbridge discover\n")
	var out, logs bytes.Buffer
	cmd := dep.command(ctx, env, "discover", "eu")
	cmd.Stdout = &out
	cmd.Stderr = &logs
	cmd.Env = append(cmd.Env, "LOG_LEVEL=info") // its per-stage times
	start, used := time.Now(), readCPU(s)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dexbridge discover: %w: %s", err, out.String())
	}
	wall, used := time.Since(start), readCPU(s).since(used)
	used.dexbridge = cpuOf(cmd.ProcessState)
	fmt.Fprint(env.Log, out.String())
	stages := discoveryStages(logs.Bytes())
	var devices, users, activities int64
	err = db.pool.QueryRow(ctx, `SELECT devices, users, activities FROM discovery_runs WHERE outcome = 'success'
		ORDER BY id DESC LIMIT 1`).Scan(&devices, &users, &activities)
	if err != nil {
		return nil, fmt.Errorf("read the run: %w", err)
	}
	name := fmt.Sprintf("discovery-%dk", n/1000)
	rss := peakRSS(cmd)
	ratio := wall.Seconds() / baseWall.Seconds()
	quiet, during, refresh, err := identifyDuringDiscovery(ctx, env, st)
	if err != nil {
		return nil, err
	}
	return []Row{
		setupRow(name, env, n, "dexbridge discover eu into an empty cache", "; baseline: the five exports alone, at once"),
		{name, "wall time", fmt.Sprintf("%.1f s", wall.Seconds()), fmt.Sprintf("%.1f s (exports alone)", baseWall.Seconds()), ""},
		{name, "wall time / exports alone", fmt.Sprintf("%.2f", ratio), "1", target(fmt.Sprintf("<= %.1f", discoveryTargetRatio), ratio <= discoveryTargetRatio)},
		{name, "rows per second", fmt.Sprintf("%.0f (%d exported)", float64(exported)/wall.Seconds(), exported),
			fmt.Sprintf("%.0f (exports alone)", float64(exported)/baseWall.Seconds()), ""},
		{name, "where the time went (the process's log)", stages, "-", ""},
		{name, "CPU used, in seconds of one core", used.discovery(exported), baseCPU.exportsAlone(), ""},
		{name, "cache rows", fmt.Sprintf("%d devices, %d users, %d activities", devices, users, activities), "-", ""},
		{name, "peak RSS (dexbridge process)", mib(rss), "-", target("< 256 MiB", rss < discoveryTargetRSS)},
		{name, fmt.Sprintf("identify p99 at %g/s during a refresh (%.1f s)", env.RetentionRate, refresh.Seconds()),
			fmt.Sprintf("%s (%s)", ms(during.percentile(0.99)), failedOf(during)),
			fmt.Sprintf("%s with no discovery (%s)", ms(quiet.percentile(0.99)), failedOf(quiet)), ""},
	}, nil
}

// failedOf says how many requests of r failed, and why: "3 of 2000 failed: 503 ×3".
func failedOf(r loadResult) string {
	if r.failed == 0 {
		return fmt.Sprintf("0 of %d failed", r.sent)
	}
	return fmt.Sprintf("%d of %d failed: %s", r.failed, r.sent, r.reasons())
}

// identifyDuringDiscovery serves identification from the cache the first discovery
// filled, measures it at env.RetentionRate for env.Duration with nothing else
// running, then again during a second discovery of the same instance (which
// replaces every cached row), and returns both and the second discovery's wall time.
func identifyDuringDiscovery(ctx context.Context, env Env, st *stack) (quiet, during loadResult, refresh time.Duration, err error) {
	key, err := st.dep.apiKey(ctx, env, "read")
	if err != nil {
		return quiet, during, 0, err
	}
	rows, _ := st.db.pool.Query(ctx, `SELECT name FROM users ORDER BY md5(name) LIMIT 5000`)
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(users) == 0 {
		err = errors.New("no user in the cache")
	}
	if err != nil {
		return quiet, during, 0, fmt.Errorf("users in the cache: %w", err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	serve := st.dep.command(runCtx, env, "run", "ingress", "devices")
	if err := serve.Start(); err != nil {
		return quiet, during, 0, err
	}
	defer func() { stopRun(); _ = serve.Wait() }()
	base := "http://" + st.dep.listen
	if err := waitHTTP(ctx, base+"/readyz", time.Minute); err != nil {
		return quiet, during, 0, err
	}
	do := identifyExplained(identifyClient(), base, key, users)
	fmt.Fprintf(env.Log, "identify at %g/s, no discovery\n", env.RetentionRate)
	quiet = openLoop(ctx, env.RetentionRate, env.Duration, do)

	fmt.Fprintf(env.Log, "identify at %g/s during a second discovery\n", env.RetentionRate)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	res := make(chan loadResult, 1)
	go func() { res <- openLoopUntil(loadCtx, env.RetentionRate, do) }()
	start := time.Now()
	err = st.dep.discover(ctx, env)
	refresh = time.Since(start)
	stopLoad()
	during = <-res
	return quiet, during, refresh, err
}

// exportOnly runs discovery's five exports at once with the Nexthink client, as
// discovery does, decoding every record and keeping none, and returns the number of
// records.
func exportOnly(ctx context.Context, s *sim) (int64, error) {
	c, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: s.tenant("eu"), TokenURL: s.tenant("eu"),
		ClientID: "eu-client", ClientSecret: config.Secret("eu-client-secret"), RetryFor: time.Minute})
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	var rows atomic.Int64
	count := func(_, _ []string) error {
		rows.Add(1)
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range []string{"Windows", "macOS"} {
		g.Go(func() error { return c.Export(gctx, discovery.QueryDevices, map[string]string{"platform": p}, count) })
		g.Go(func() error { return c.Export(gctx, discovery.QueryActivity, map[string]string{"platform": p}, count) })
	}
	g.Go(func() error { return c.Export(gctx, discovery.QueryUsers, nil, count) })
	err = g.Wait()
	return rows.Load(), err
}

// discoveryStages sums up a discovery's log: per export, the time until its results
// file was ready and the time its download streamed into COPY took, and the swap's.
func discoveryStages(log []byte) string {
	var parts []string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			Msg      string            `json:"msg"`
			Query    string            `json:"query_id"`
			Params   map[string]string `json:"params"`
			Rows     int64             `json:"rows"`
			Export   int64             `json:"export_ms"`
			Load     int64             `json:"load_ms"`
			Duration int64             `json:"duration_ms"`
			Devices  int64             `json:"devices_ms"`
			Rest     int64             `json:"rest_ms"`
			Steps    string            `json:"steps"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch m.Msg {
		case "discovery staged":
			what := strings.TrimPrefix(m.Query, "#dexbridge_discovery_")
			if p := m.Params["platform"]; p != "" {
				what += " " + p
			}
			parts = append(parts, fmt.Sprintf("%s: ready %.1f s, download+COPY %.1f s (%d rows)", what,
				float64(m.Export)/1000, float64(m.Load)/1000, m.Rows))
		case "discovery swapped":
			steps := ""
			if m.Steps != "" {
				steps = ": " + m.Steps
			}
			parts = append(parts, fmt.Sprintf("swap %.1f s (devices and users %.1f s, indexed as soon as they were in; the rest %.1f s, after the last export%s)",
				float64(m.Duration)/1000, float64(m.Devices)/1000, float64(m.Rest)/1000, steps))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// cpuUse is the CPU time each process of a discovery used: on two cores, what
// dexbridge and PostgreSQL use is taken from nxsim producing the exports.
type cpuUse struct {
	sim, self, postgres, dexbridge time.Duration
	postgresKnown                  bool
}

// readCPU reads the CPU time nxsim, this process and PostgreSQL have used so far.
func readCPU(s *sim) cpuUse {
	var u cpuUse
	u.sim = procCPU(s.cmd.Process.Pid)
	u.self = cpuTime()
	u.postgres, u.postgresKnown = postgresCPU()
	return u
}

func (u cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{sim: u.sim - before.sim, self: u.self - before.self, postgres: u.postgres - before.postgres,
		postgresKnown: u.postgresKnown && before.postgresKnown}
}

func (u cpuUse) discovery(rows int64) string {
	pg := "PostgreSQL not on this machine"
	if u.postgresKnown {
		pg = fmt.Sprintf("PostgreSQL %.1f", u.postgres.Seconds())
	}
	return fmt.Sprintf("dexbridge %.1f (%.1f µs per row), %s, nxsim %.1f",
		u.dexbridge.Seconds(), float64(u.dexbridge.Microseconds())/float64(max(rows, 1)), pg, u.sim.Seconds())
}

func (u cpuUse) exportsAlone() string {
	return fmt.Sprintf("nxsim %.1f, the exports' client %.1f (exports alone)", u.sim.Seconds(), u.self.Seconds())
}
