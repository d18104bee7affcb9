package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// The identification targets of the issue, on 2 cores.
const (
	identifyTargetRate = 5000                  // requests per second sustained
	identifyTargetP99  = 10 * time.Millisecond // at that rate
)

// identifyScenario measures identification from the cache through `dexbridge run
// ingress devices` at env.Rate, open loop, then the same question asked of nxsim's NQL
// API directly at env.IdentifyDirectRate. nxsim scans its whole fleet's sessions for
// #get_device_basic_infos (about 130 ms of its CPU at 100 000 devices, on top of
// env.Latency), so the direct rate stays low enough for nxsim not to saturate the
// machine's cores: its latency is then the tenant's, not a queue's.
func identifyScenario(ctx context.Context, env Env) ([]Row, error) {
	st, key, users, err := startIdentifyStack(ctx, env)
	if err != nil {
		return nil, err
	}
	defer st.close()
	s, dep := st.sim, st.dep

	runCtx, stopRun := context.WithCancel(ctx)
	serve := dep.command(runCtx, env, "run", "ingress", "devices")
	if err := serve.Start(); err != nil {
		stopRun()
		return nil, err
	}
	served := false
	defer func() {
		if !served {
			stopRun()
			_ = serve.Wait()
		}
	}()
	base := "http://" + dep.listen
	if err := waitHTTP(ctx, base+"/readyz", time.Minute); err != nil {
		return nil, err
	}
	client := identifyClient()
	cached := identifyRequest(client, base, key, users)
	// The answers are real: a sample must come from the cache with devices in it.
	good := 0
	const sample = 50
	for i := range sample {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/devices?username="+url.QueryEscape(users[i]), nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		var a struct {
			Devices []json.RawMessage `json:"devices"`
			Source  string            `json:"source"`
		}
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && a.Source == "cache" && len(a.Devices) > 0 {
			good++
		}
	}
	fmt.Fprintf(env.Log, "warm-up\n")
	openLoop(ctx, min(env.Rate, 1000), 2*time.Second, cached)
	fmt.Fprintf(env.Log, "through dexbridge at %g/s for %s\n", env.Rate, env.Duration)
	dex := openLoop(ctx, env.Rate, env.Duration, cached)
	stopRun()
	_ = serve.Wait()
	served = true
	rss := peakRSS(serve)

	// The baseline: nxsim's NQL API directly, env.Latency per call.
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	nx, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: s.tenant("eu"), TokenURL: s.tenant("eu"),
		ClientID: "eu-client", ClientSecret: config.Secret("eu-client-secret"), HTTPClient: &http.Client{Transport: tr}, RetryFor: time.Nanosecond})
	if err != nil {
		return nil, err
	}
	defer nx.CloseIdleConnections()
	direct := func(ctx context.Context, i int) (int, error) {
		_, err := nx.Execute(ctx, "#get_device_basic_infos", map[string]string{"username": users[i%len(users)]})
		var ne *nexthink.Error
		switch {
		case err == nil:
			return http.StatusOK, nil
		case errors.As(err, &ne) && ne.Status != 0:
			return ne.Status, nil
		}
		return 0, err
	}
	if _, err := direct(ctx, 0); err != nil { // fetches the token outside the measurement
		return nil, err
	}
	fmt.Fprintf(env.Log, "nxsim directly at %g/s for %s\n", env.IdentifyDirectRate, env.Duration)
	nxs := openLoop(ctx, env.IdentifyDirectRate, env.Duration, direct)

	// The target is one: 5000 requests per second sustained (every one answered 200,
	// throughput within 1 % of the offered rate) with p99 under 10 ms.
	sustained := env.Rate >= identifyTargetRate && dex.failed == 0 && dex.throughput() >= 0.99*identifyTargetRate
	p99 := dex.percentile(0.99)
	goal := fmt.Sprintf(">= %d req/s with p99 < %s", identifyTargetRate, ms(identifyTargetP99))
	rateTarget := target(goal, sustained && p99 < identifyTargetP99)
	p99Target := target("p99 < "+ms(identifyTargetP99), p99 < identifyTargetP99)
	if env.Rate < identifyTargetRate {
		rateTarget = goal + ": not measured (-rate below)"
	}
	return []Row{
		setupRow("identify", env, env.Fleet, "dexbridge run ingress devices, cache limit raised out of the way", "; baseline #get_device_basic_infos"),
		{"identify", "offered load (open loop)", fmt.Sprintf("%g req/s", env.Rate), fmt.Sprintf("%g req/s (nxsim NQL API directly)", env.IdentifyDirectRate), ""},
		{"identify", "throughput (200 answers)", fmt.Sprintf("%.0f req/s", dex.throughput()), fmt.Sprintf("%.1f req/s", nxs.throughput()), rateTarget},
		{"identify", "latency p50", ms(dex.percentile(0.50)), ms(nxs.percentile(0.50)), ""},
		{"identify", "latency p99", ms(dex.percentile(0.99)), ms(nxs.percentile(0.99)), p99Target},
		{"identify", "latency p999", ms(dex.percentile(0.999)), ms(nxs.percentile(0.999)), ""},
		{"identify", "latency max", ms(dex.percentile(1)), ms(nxs.percentile(1)), ""},
		{"identify", "failed or not 200", fmt.Sprintf("%d of %d", dex.failed, dex.sent), fmt.Sprintf("%d of %d", nxs.failed, nxs.sent), ""},
		{"identify", "sampled answers from the cache with devices", fmt.Sprintf("%d of %d", good, sample), "-", ""},
		{"identify", "peak RSS (dexbridge run ingress devices)", mib(rss), "-", ""},
	}, nil
}

// startIdentifyStack starts a stack whose cache holds nxsim's fleet, with the cache
// limit raised far above any offered rate (identification then measures the request
// path, not the limiter's refusals), a key with the read scope, and 5000 users of
// the cache to identify, the same ones each time.
func startIdentifyStack(ctx context.Context, env Env) (_ *stack, key string, users []string, err error) {
	st, err := startStack(ctx, env, env.Fleet, 1_000_000)
	if err != nil {
		return nil, "", nil, err
	}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	if err := st.dep.discover(ctx, env); err != nil {
		return nil, "", nil, err
	}
	if key, err = st.dep.apiKey(ctx, env, "read"); err != nil {
		return nil, "", nil, err
	}
	rows, _ := st.db.pool.Query(ctx, `SELECT name FROM users ORDER BY md5(name) LIMIT 5000`)
	users, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(users) == 0 {
		err = errors.New("no user in the cache")
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("users in the cache: %w", err)
	}
	return st, key, users, nil
}

// identifyClient is an HTTP client for an open loop of identifications: enough idle
// connections that none is opened during the measurement.
func identifyClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}
}

// identifyRequest identifies the i-th user (round robin) through dexbridge at base.
func identifyRequest(client *http.Client, base, key string, users []string) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/devices?username="+url.QueryEscape(users[i%len(users)]), nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// loadResult is the outcome of an open-loop run.
type loadResult struct {
	sent, failed int
	ok           []time.Duration // latencies of the 200 answers, sorted
	elapsed      time.Duration   // from the first due time to the last answer
}

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.ok) == 0 {
		return 0
	}
	k := int(float64(len(r.ok))*p+0.5) - 1
	return r.ok[min(max(k, 0), len(r.ok)-1)]
}

func (r loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.ok)) / r.elapsed.Seconds()
}

// openLoop sends rate requests per second for d, each at its due time whatever the
// previous ones are doing, and measures each latency from its due time: a server that
// falls behind shows it in the latencies instead of slowing the load down.
func openLoop(ctx context.Context, rate float64, d time.Duration, do func(ctx context.Context, i int) (int, error)) loadResult {
	n := int(rate * d.Seconds())
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(20 * time.Millisecond)
	var last time.Time
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			code, err := do(ctx, i)
			end := time.Now()
			lat[i] = end.Sub(due)
			if err != nil {
				code = -1
			}
			codes[i] = code
			mu.Lock()
			if end.After(last) {
				last = end
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r := loadResult{sent: n, elapsed: last.Sub(start)}
	for i := range n {
		if codes[i] == http.StatusOK {
			r.ok = append(r.ok, lat[i])
		} else {
			r.failed++
		}
	}
	slices.Sort(r.ok)
	return r
}
