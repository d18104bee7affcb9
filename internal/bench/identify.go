package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/store"
)

// The identification targets of the issue, on 2 cores.
const (
	identifyTargetRate = 5000                  // requests per second, closed loop
	identifyTargetP99  = 10 * time.Millisecond // at 80 % of the closed-loop capacity, open loop, connections kept
	// identifyTargetShare is dexbridge's closed-loop capacity over the ceiling's.
	identifyTargetShare = 0.5
	// At three times the capacity, open loop with a new connection per request: the
	// goodput's share of the capacity, the p99 of the 200s and the server's RSS.
	overloadTargetGoodput = 0.9
	overloadTargetP99     = 50 * time.Millisecond
	overloadTargetRSS     = 256 << 20
	// identifyConcurrency is the closed loops' concurrency, the ceiling's and
	// dexbridge's alike.
	identifyConcurrency = 64
	// openLoopBound is the most requests the open-loop client has in flight.
	openLoopBound = 2048
	// keptConnections is how many connections the kept phases open before they
	// start: the closed loop's and as many more for the open loop's bursts.
	keptConnections = 2 * identifyConcurrency
)

// identifyScenario measures identification from the cache, in one run:
//
//   - the ceiling: a bare NATS request-reply, over dexbridge's own NATS server, to a
//     handler in this process that runs the cache's PostgreSQL query with pgx (no
//     HTTP, no authentication, no limiter), closed loop at identifyConcurrency;
//   - dexbridge's capacity: GET /api/v1/devices?username= through `dexbridge run
//     ingress devices`, closed loop at the same concurrency, connections kept;
//   - open loop at 0.8 times that capacity, connections kept (the target's p99);
//   - open loop at 0.8, 1 and 3 times that capacity, a new connection per request
//     (latency counted from each request's due time, as in every open loop);
//   - wrk, closed loop at the same concurrency, as an independent check of the
//     capacity (when wrk is installed);
//   - the same question asked of nxsim's NQL API directly at env.IdentifyDirectRate:
//     what a chatbot without dexbridge gets. nxsim finds the user's devices by
//     index (microseconds), so the answer's time is the tenant's added latency; the
//     rate stays low, as a tenant's NQL API limits allow.
//
// The load generator's own CPU is printed beside each figure: on a shared 2-core
// machine it takes its share from what it measures.
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

	// (a) The ceiling of the parts.
	natsURL, err := dep.natsURL()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(natsURL, nats.Name("dexbench-ceiling"))
	if err != nil {
		return nil, fmt.Errorf("connect to dexbridge's NATS: %w", err)
	}
	defer nc.Close()
	subject := "dexbench.ceiling"
	sub, err := ceilingHandler(nc, subject, store.New(st.db.pool))
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	ask := ceilingRequest(nc, subject, users)
	closedPhase(ctx, identifyConcurrency, time.Second, ask) // warm-up
	fmt.Fprintf(env.Log, "ceiling: NATS request-reply + pgx, closed loop, %d at once, %s\n", identifyConcurrency, env.Duration)
	ceiling := closedPhase(ctx, identifyConcurrency, env.Duration, ask)

	// (b) dexbridge's closed-loop capacity.
	measured := func(run func() phase) phase { // with dexbridge's CPU during the phase
		cpu0 := procCPU(serve.Process.Pid)
		p := run()
		p.serverCPU = procCPU(serve.Process.Pid) - cpu0
		return p
	}
	// A chatbot's backend keeps its connections: the closed loop uses
	// identifyConcurrency of them, the open loop more while answers are slow.
	kept, err := newKeptConns(ctx, dep.listen, key, users, keptConnections)
	if err != nil {
		return nil, fmt.Errorf("connect to dexbridge: %w", err)
	}
	defer kept.close()
	cached := kept.request
	closedPhase(ctx, identifyConcurrency, 2*time.Second, cached) // warm-up
	fmt.Fprintf(env.Log, "dexbridge closed loop, %d at once, %s\n", identifyConcurrency, env.Duration)
	closed := measured(func() phase { return closedPhase(ctx, identifyConcurrency, env.Duration, cached) })
	capacity := closed.goodput()
	if capacity < 1 {
		return nil, fmt.Errorf("dexbridge answered %d of %d closed-loop requests 200", closed.ok, closed.sent)
	}

	// At 80 % of the capacity, open loop, connections kept as a chatbot's backend
	// keeps them: the latency the service gives when it is not overloaded.
	fmt.Fprintf(env.Log, "dexbridge open loop at 0.8x capacity (%.0f/s), connections kept, %s\n", 0.8*capacity, env.Duration)
	dials := kept.dials.Load()
	kept80 := measured(func() phase { return boundedOpenLoop(ctx, 0.8*capacity, env.Duration, openLoopBound, cached) })
	dials = kept.dials.Load() - dials
	kept.close() // the churning phases start with the server's connections free

	// (c) Open loop, a new connection per request.
	churn := churnRequest(dep.listen, key, users)
	open := map[float64]phase{}
	refusers := map[float64]refusals{}
	for _, x := range []float64{0.8, 1, 3} {
		fmt.Fprintf(env.Log, "dexbridge open loop at %.1fx capacity (%.0f/s), new connection per request, %s\n", x, x*capacity, env.Duration)
		before := scrapeRefusals(ctx, base)
		open[x] = measured(func() phase { return boundedOpenLoop(ctx, x*capacity, env.Duration, openLoopBound, churn) })
		refusers[x] = scrapeRefusals(ctx, base).minus(before)
	}

	// wrk, closed loop, keep-alive, one user: an independent check of (b).
	wrkOut := "wrk not installed"
	if path, err := exec.LookPath("wrk"); err == nil {
		fmt.Fprintf(env.Log, "wrk closed loop, %d connections\n", identifyConcurrency)
		out, err := exec.CommandContext(ctx, path, "-t2", fmt.Sprintf("-c%d", identifyConcurrency), "-d5s",
			"-H", "X-API-Key: "+key, base+"/api/v1/devices?username="+url.QueryEscape(users[0])).CombinedOutput()
		fmt.Fprint(env.Log, string(out))
		switch r := wrkRate(string(out)); {
		case err != nil:
			wrkOut = "wrk failed: " + err.Error()
		case r == "":
			wrkOut = "wrk printed no rate"
		default:
			wrkOut = r + " req/s (wrk, one user, 5 s)"
		}
	}
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

	cores := runtime.NumCPU()
	gen := func(p phase) string {
		return fmt.Sprintf("load generator %.0f%% of %d cores", 100*p.cpuShare(cores), cores)
	}
	// withServer adds dexbridge's own CPU per answer, which a shared machine hardly moves.
	withServer := func(p phase) string {
		per200, perAnswer := p.serverCPUPer()
		return fmt.Sprintf("%s; dexbridge %.0f%% of %d cores, %s CPU per 200 (%s per answer)", gen(p),
			100*p.serverCPU.Seconds()/p.elapsed.Seconds()/float64(cores), cores, us(per200), us(perAnswer))
	}
	share := capacity / ceiling.goodput()
	at3 := open[3]
	rows := []Row{
		setupRow("identify", env, env.Fleet, "dexbridge run ingress devices, cache limit raised out of the way",
			fmt.Sprintf("; ceiling: NATS request-reply to a pgx handler; baseline #get_device_basic_infos at %g/s", env.IdentifyDirectRate)),
		{"identify", fmt.Sprintf("(a) ceiling, closed loop x%d", identifyConcurrency),
			fmt.Sprintf("%.0f req/s, p50 %s, p99 %s", ceiling.goodput(), ms(pct(ceiling.okLat, .5)), ms(pct(ceiling.okLat, .99))), gen(ceiling), ""},
		{"identify", fmt.Sprintf("(b) dexbridge closed loop x%d (capacity)", identifyConcurrency),
			fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d not 200", capacity, ms(pct(closed.okLat, .5)), ms(pct(closed.okLat, .99)), closed.sent-closed.ok),
			withServer(closed), target(fmt.Sprintf(">= %d req/s", identifyTargetRate), capacity >= identifyTargetRate)},
		{"identify", "(b) / (a)", fmt.Sprintf("%.2f", share), "1", target(fmt.Sprintf(">= %.1f", identifyTargetShare), share >= identifyTargetShare)},
		{"identify", "(b) checked with wrk x64, keep-alive", wrkOut, "-", ""},
		{"identify", "open loop 0.8x capacity, connections kept",
			fmt.Sprintf("offered %.0f/s: 200 %.0f/s, p50 %s, p99 %s; 503 %d; other %d; connections opened during the phase %d (%d open before)",
				0.8*capacity, kept80.goodput(), ms(pct(kept80.okLat, .5)), ms(pct(kept80.okLat, .99)), kept80.shed, kept80.other,
				dials, keptConnections),
			withServer(kept80), target("p99 < "+ms(identifyTargetP99), kept80.ok > 0 && pct(kept80.okLat, .99) < identifyTargetP99)},
	}
	for _, x := range []float64{0.8, 1, 3} {
		p := open[x]
		rows = append(rows, Row{"identify", fmt.Sprintf("(c) open loop %.1fx capacity, new connection per request", x),
			fmt.Sprintf("offered %.0f/s: 200 %.0f/s (%.0f%% of capacity), p50 %s, p99 %s; 503 %d (p50 %s, p99 %s; %s); other %d; client-bound drops %d",
				x*capacity, p.goodput(), 100*p.goodput()/capacity, ms(pct(p.okLat, .5)), ms(pct(p.okLat, .99)),
				p.shed, ms(pct(p.shedLat, .5)), ms(pct(p.shedLat, .99)), refusers[x], p.other, p.dropped),
			withServer(p), ""})
	}
	rows[len(rows)-1].Target = target(fmt.Sprintf("200 >= %.0f%% of capacity, p99 < %s", 100*overloadTargetGoodput, ms(overloadTargetP99)),
		at3.goodput() >= overloadTargetGoodput*capacity && pct(at3.okLat, .99) < overloadTargetP99)
	rows = append(rows,
		Row{"identify", "nxsim NQL API directly (a chatbot without dexbridge)", "-",
			fmt.Sprintf("offered %g/s: %.1f/s answered, p50 %s, p99 %s, %d of %d failed", env.IdentifyDirectRate, nxs.throughput(),
				ms(nxs.percentile(.5)), ms(nxs.percentile(.99)), nxs.failed, nxs.sent), ""},
		Row{"identify", "sampled answers from the cache with devices", fmt.Sprintf("%d of %d", good, sample), "-", ""},
		Row{"identify", "peak RSS (dexbridge run ingress devices)", mib(rss), "-", target("< 256 MiB", rss < overloadTargetRSS)},
	)
	return rows, nil
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

// identify asks dexbridge at base for user's devices.
func identify(ctx context.Context, client *http.Client, base, key, user string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/devices?username="+url.QueryEscape(user), nil)
	req.Header.Set("X-API-Key", key)
	return client.Do(req)
}

// identifyRequest identifies the i-th user (round robin) through dexbridge at base.
func identifyRequest(client *http.Client, base, key string, users []string) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		resp, err := identify(ctx, client, base, key, users[i%len(users)])
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// refusal is an answer other than 200, with its problem code and detail.
type refusal struct {
	status       int
	code, detail string
}

func (r *refusal) Error() string { return fmt.Sprintf("answered %d %s", r.status, r.code) }

// identifyExplained is identifyRequest that returns a *refusal for an answer other
// than 200, which says why.
func identifyExplained(client *http.Client, base, key string, users []string) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		resp, err := identify(ctx, client, base, key, users[i%len(users)])
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, nil
		}
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		if len(p.Detail) > 80 {
			p.Detail = p.Detail[:80] + "..."
		}
		return resp.StatusCode, &refusal{status: resp.StatusCode, code: cmp.Or(p.Code, "(no problem code)"), detail: p.Detail}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// loadResult is the outcome of an open-loop run.
type loadResult struct {
	sent, failed int
	// why counts the failures by reason: the status code, or the client's error.
	why     map[string]int
	ok      []time.Duration // latencies of the 200 answers, sorted
	elapsed time.Duration   // from the first due time to the last answer
}

// fail counts a failed request: its status code, or the client's error.
func (r *loadResult) fail(code int, err error) {
	r.failed++
	if r.why == nil {
		r.why = map[string]int{}
	}
	why := fmt.Sprint(code)
	if err != nil {
		why = failure(err)
	}
	r.why[why]++
}

// failure names a client error without what differs from one request to the next
// (addresses, ports).
func failure(err error) string {
	var ne net.Error
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return strings.TrimSpace(fmt.Sprintf("%d %s %s", rf.status, rf.code, rf.detail))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "error"
}

// reasons is the failures by reason, most frequent first: "503 ×40, timeout ×7".
func (r loadResult) reasons() string {
	keys := slices.Collect(maps.Keys(r.why))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(r.why[b]-r.why[a], strings.Compare(a, b)) })
	parts := make([]string, len(keys))
	for k, why := range keys {
		parts[k] = fmt.Sprintf("%s ×%d", why, r.why[why])
	}
	return strings.Join(parts, ", ")
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
	var r loadResult
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
			if code != http.StatusOK {
				r.fail(code, err)
			}
			if end.After(last) {
				last = end
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.sent, r.elapsed = n, last.Sub(start)
	for i := range n {
		switch codes[i] {
		case http.StatusOK:
			r.ok = append(r.ok, lat[i])
		case 0: // not sent: ctx ended first
			r.fail(0, ctx.Err())
		}
	}
	slices.Sort(r.ok)
	return r
}

// openLoopUntil is openLoop until stop ends rather than for a fixed time; the
// requests in flight then finish under their own context.
func openLoopUntil(stop context.Context, rate float64, do func(ctx context.Context, i int) (int, error)) loadResult {
	ctx := context.WithoutCancel(stop)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(20 * time.Millisecond)
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		last  time.Time
		r     loadResult
		timer = time.NewTimer(0)
	)
	defer timer.Stop()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		timer.Reset(time.Until(due))
		select {
		case <-stop.Done():
			wg.Wait()
			r.elapsed = last.Sub(start)
			slices.Sort(r.ok)
			return r
		case <-timer.C:
		}
		r.sent++
		wg.Go(func() {
			code, err := do(ctx, i)
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err == nil && code == http.StatusOK {
				r.ok = append(r.ok, end.Sub(due))
			} else {
				r.fail(code, err)
			}
			if end.After(last) {
				last = end
			}
		})
	}
}

// refusals counts the ingress's 503s by where they were decided, from its metrics:
// admission control, before any work on the request; the listener, beyond
// max_connections; and the handlers, after authentication (max_in_flight, a worker).
type refusals struct{ admission, listener, handlers float64 }

func (r refusals) minus(o refusals) refusals {
	return refusals{r.admission - o.admission, r.listener - o.listener, r.handlers - o.handlers}
}

func (r refusals) String() string {
	return fmt.Sprintf("ingress: admission %.0f, listener %.0f, handlers %.0f", r.admission, r.listener, r.handlers)
}

// scrapeRefusals reads the refusal counters from the ingress's /metrics (which
// admission control never refuses).
func scrapeRefusals(ctx context.Context, base string) refusals {
	var r refusals
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch name := line[:i]; {
		case strings.HasPrefix(name, "dexbridge_admission_refused_total"):
			r.admission += v
		case name == `dexbridge_rate_limit_rejections_total{limit="connections"}`:
			r.listener += v
		case strings.HasPrefix(name, "dexbridge_http_requests_total") && strings.Contains(name, `status="503"`):
			r.handlers += v
		}
	}
	return r
}
