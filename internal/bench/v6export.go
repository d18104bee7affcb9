package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// v6ExportScenario measures the V6 driver's discovery export of n devices on two
// nxsim Engines (a separate process): the peak Go heap of this process while every
// device row passes to a consumer that counts it (the driver writing the devices'
// routes to PostgreSQL meanwhile), against the baseline of the same Engine answers
// read whole and decoded into rows (what a driver that holds the result before
// handing it over keeps, without its merging), measured the same way in the same
// run.
func v6ExportScenario(ctx context.Context, env Env, n int) ([]Row, error) {
	var port int
	var cmd *exec.Cmd
	for attempt := 0; ; attempt++ {
		// The Engines listen on the next ports, which may be taken: then again elsewhere.
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, filepath.Join(env.Bin, "nxsim"), "-mode", "v6", "-engines", "2", "-size", fmt.Sprint(n),
			"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-topics", "topics", "-queries", "config/queries.yaml", "-log-level", "warn",
			"-query-timeout", "5m") // 250 000 devices per Engine, both computed at once on a shared machine
		cmd.Dir, cmd.Stderr, cmd.Stdout = env.Root, env.Log, io.Discard
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start nxsim v6: %w", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		err = waitPortal(ctx, fmt.Sprintf("http://127.0.0.1:%d", port), exited)
		if err == nil {
			defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); <-exited }()
			break
		}
		_ = cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			return nil, err
		}
	}
	portal := fmt.Sprintf("http://127.0.0.1:%d", port)
	forms, err := topic.FilesIn(env.Root).NXQLForms()
	if err != nil {
		return nil, err
	}
	const query = "#dexbridge_discovery_devices"
	var form nxql.Form
	for _, f := range forms.Forms {
		if f.ID == query {
			form = f
		}
	}
	// The driver as a process builds it: routes written to PostgreSQL as the rows pass.
	db, err := newDatabase(ctx, env)
	if err != nil {
		return nil, err
	}
	defer db.drop()
	if _, err := store.Migrate(ctx, db.pool); err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: portal, Username: "nxsim",
		Password: config.Secret("nxsim-secret")}}
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	sdb := store.New(db.pool)
	set, err := instances.New(cfg, ratelimit.NewShared(sdb), instances.Options{Forms: forms.Forms, DB: sdb,
		ConfigureV6: func(c *nexthinkv6.Config) { c.RetryFor, c.CallTimeout = time.Minute, 5*time.Minute }})
	if err != nil {
		return nil, err
	}
	defer set.Close()
	in, _ := set.Get("dc")
	d := in.Client
	platforms := map[string]string{"Windows": "windows", "macOS": "mac_os"}

	var streamed int64
	start := time.Now()
	streamPeak, err := peakHeap(func() error {
		for p := range platforms {
			err := d.Export(ctx, query, map[string]string{"platform": p}, func(_, _ []string) error { streamed++; return nil })
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("streamed export: %w", err)
	}
	streamTime := time.Since(start)

	var held int64
	start = time.Now()
	heldPeak, err := peakHeap(func() error {
		for _, platform := range platforms {
			var answers [][]map[string]any // every Engine's rows, held until all answered
			for k := range 2 {
				rows, err := readWhole(ctx, fmt.Sprintf("http://127.0.0.1:%d", port+1+k), form.Text(0, 0), platform)
				if err != nil {
					return err
				}
				answers = append(answers, rows)
				held += int64(len(rows))
			}
			runtime.KeepAlive(answers)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	heldTime := time.Since(start)
	name := fmt.Sprintf("v6-export-%dk", n/1000)
	return []Row{
		{Scenario: name, Metric: "setup", Dexbridge: fmt.Sprintf("nxsim -mode v6, 2 Engines, %s devices; the discovery device export, Windows then macOS", thousands(int64(n))), Baseline: "-"},
		{Scenario: name, Metric: "rows exported", Dexbridge: thousands(streamed), Baseline: thousands(held) + " (copies of moved devices included)"},
		{Scenario: name, Metric: "peak Go heap during the export", Dexbridge: mib(int64(streamPeak)), Baseline: mib(int64(heldPeak)) + " (answers held whole)"},
		{Scenario: name, Metric: "wall time", Dexbridge: streamTime.Round(time.Millisecond).String(), Baseline: heldTime.Round(time.Millisecond).String()},
	}, nil
}

// readWhole asks an Engine for a query's answer and decodes all of it.
func readWhole(ctx context.Context, engine, text, platform string) ([]map[string]any, error) {
	form := url.Values{"query": {text}, "format": {"json"}, "platform": {platform}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, engine+"/2/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("nxsim", "nxsim-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("engine %s: %d %.200s", engine, resp.StatusCode, b)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var rows []map[string]any
	return rows, dec.Decode(&rows)
}

// peakHeap runs fn and returns the highest live heap seen while it ran (sampled
// every millisecond, after a collection before it started).
func peakHeap(fn func() error) (uint64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapAlloc)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := fn()
	close(done)
	wg.Wait()
	return peak, err
}

func waitPortal(ctx context.Context, portal string, exited <-chan struct{}) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, portal+"/api/configuration/v1/engines", nil)
		req.SetBasicAuth("nxsim", "nxsim-secret")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the nxsim V6 Portal did not answer")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("nxsim v6 exited before its Portal answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
