package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/services/discovery"
)

// discoveryScenario measures `dexbridge discover` of an instance of n devices into an
// empty cache, and, as the baseline, the same exports without the load.
func discoveryScenario(ctx context.Context, env Env, n int) ([]Row, error) {
	st, err := startStack(ctx, env, n, 500)
	if err != nil {
		return nil, err
	}
	defer st.close()
	s, db, dep := st.sim, st.db, st.dep
	if err := dep.command(ctx, env, "migrate").Run(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}

	fmt.Fprintf(env.Log, "exports alone (baseline)\n")
	baseStart := time.Now()
	exported, err := exportOnly(ctx, s)
	if err != nil {
		return nil, err
	}
	baseWall := time.Since(baseStart)

	fmt.Fprintf(env.Log, "dexbridge discover\n")
	var out bytes.Buffer
	cmd := dep.command(ctx, env, "discover", "eu")
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dexbridge discover: %w: %s", err, out.String())
	}
	wall := time.Since(start)
	fmt.Fprint(env.Log, out.String())
	var devices, users, activities int64
	err = db.pool.QueryRow(ctx, `SELECT devices, users, activities FROM discovery_runs WHERE outcome = 'success'
		ORDER BY id DESC LIMIT 1`).Scan(&devices, &users, &activities)
	if err != nil {
		return nil, fmt.Errorf("read the run: %w", err)
	}
	name := fmt.Sprintf("discovery-%dk", n/1000)
	rss := peakRSS(cmd)
	rows := []Row{
		setupRow(name, env, n, "dexbridge discover eu into an empty cache", "; baseline: the five exports alone"),
		{name, "wall time", fmt.Sprintf("%.1f s", wall.Seconds()), fmt.Sprintf("%.1f s (exports alone)", baseWall.Seconds()), ""},
		{name, "rows per second", fmt.Sprintf("%.0f (%d exported)", float64(exported)/wall.Seconds(), exported),
			fmt.Sprintf("%.0f (exports alone)", float64(exported)/baseWall.Seconds()), ""},
		{name, "cache rows", fmt.Sprintf("%d devices, %d users, %d activities", devices, users, activities), "-", ""},
		{name, "peak RSS (dexbridge process)", mib(rss), "-", ""},
	}
	if n == 500_000 { // the targets, for 2 cores
		rows[1].Target = target("< 60 s", wall < time.Minute)
		rows[4].Target = target("< 512 MiB", rss < 512<<20)
	}
	return rows, nil
}

// exportOnly runs discovery's five exports with the Nexthink client, decoding every
// record and keeping none, and returns the number of records.
func exportOnly(ctx context.Context, s *sim) (int64, error) {
	c, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: s.tenant("eu"), TokenURL: s.tenant("eu"),
		ClientID: "eu-client", ClientSecret: config.Secret("eu-client-secret"), RetryFor: time.Minute})
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	var rows int64
	count := func(_, _ []string) error {
		rows++
		return nil
	}
	for _, p := range []string{"Windows", "macOS"} {
		if err := c.Export(ctx, discovery.QueryDevices, map[string]string{"platform": p}, count); err != nil {
			return 0, err
		}
	}
	if err := c.Export(ctx, discovery.QueryUsers, nil, count); err != nil {
		return 0, err
	}
	for _, p := range []string{"Windows", "macOS"} {
		if err := c.Export(ctx, discovery.QueryActivity, map[string]string{"platform": p}, count); err != nil {
			return 0, err
		}
	}
	return rows, nil
}
