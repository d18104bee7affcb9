package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// The diagnosis scenario's settings.
const (
	diagnosisCachedTopic = "l1_device_checklist"      // answered from the cache
	diagnosisLiveTopic   = "outlook"                  // reads remote-action outputs: live
	diagnosisCachedQuery = "#l1_device_checklist"     // the cached topic's one query
	diagnosisLiveQuery   = "#diagnose_outlook_issues" // the live topic's one query
	diagnosisClients     = 64                         // concurrent chatbots in the throughput runs
)

// diagnosisScenario measures POST /api/v1/topics/{topic}/diagnosis through the
// ingress, NATS, the devices and topics workers and PostgreSQL, with nxsim adding
// env.Latency to every call:
//
//   - latency and throughput at a fixed arrival rate (open loop) of the cached topic
//     (l1_device_checklist, answered from the cache) and of a live one (outlook, one
//     NQL call per diagnosis, under the instance's NQL limit), each against the
//     chatbot asking nxsim's NQL API for the same query directly, at its own rate;
//   - the NQL calls the tenant received for the cached diagnoses;
//   - the throughput of the cached diagnosis path (64 chatbots, closed loop) with one
//     and with two topics worker processes behind `dexbridge run ingress devices`.
//
// The live topic at 20 per second with a 300 ms tenant also shows that a topics
// worker does not serialise slow upstream work: one at a time it would answer three
// a second.
func diagnosisScenario(ctx context.Context, env Env) ([]Row, error) {
	// The cache limit is raised out of the way: the run measures the request path.
	st, err := startStack(ctx, env, env.Fleet, 1_000_000)
	if err != nil {
		return nil, err
	}
	defer st.close()
	s, db, dep := st.sim, st.db, st.dep
	if err := dep.discover(ctx, env); err != nil {
		return nil, err
	}
	key, err := dep.apiKey(ctx, env, "diagnose")
	if err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT name FROM devices WHERE platform = 'Windows' ORDER BY md5(name) LIMIT 2000`)
	devices, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(devices) == 0 {
		return nil, fmt.Errorf("Windows devices in the cache: %d, %v", len(devices), err)
	}

	base := "http://" + dep.listen
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	sources := &sourceCount{n: map[string]int{}}
	diagnose := func(topic string) func(ctx context.Context, i int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			body := fmt.Sprintf(`{"device":%q}`, devices[i%len(devices)])
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/topics/"+topic+"/diagnosis", strings.NewReader(body))
			req.Header.Set("X-API-Key", key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			var d struct {
				Source string `json:"source"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&d)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				sources.add(topic + ":" + d.Source)
			}
			return resp.StatusCode, nil
		}
	}

	// 1. One process, open loop.
	stop, proc, err := dep.serve(ctx, env, base, "ingress", "devices", "topics")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "warm-up\n")
	openLoop(ctx, min(env.DiagnosisRate, 100), 2*time.Second, diagnose(diagnosisCachedTopic))
	before, err := s.queryCount(ctx, "eu", diagnosisCachedQuery)
	if err != nil {
		stop()
		return nil, err
	}
	sources.reset()
	fmt.Fprintf(env.Log, "%s through dexbridge at %g/s for %s\n", diagnosisCachedTopic, env.DiagnosisRate, env.Duration)
	cached := openLoop(ctx, env.DiagnosisRate, env.Duration, diagnose(diagnosisCachedTopic))
	fromCache := sources.get(diagnosisCachedTopic + ":cache")
	after, err := s.queryCount(ctx, "eu", diagnosisCachedQuery)
	if err != nil {
		stop()
		return nil, err
	}
	// The first live call also fetches the instance's token (one per 15 minutes):
	// outside the measurement, as the direct path's is.
	openLoop(ctx, 5, time.Second, diagnose(diagnosisLiveTopic))
	fmt.Fprintf(env.Log, "%s through dexbridge at %g/s for %s\n", diagnosisLiveTopic, env.DirectRate, env.Duration)
	live := openLoop(ctx, env.DirectRate, env.Duration, diagnose(diagnosisLiveTopic))
	stop()
	rss := peakRSS(proc)

	// 2. The baseline: the chatbot asks nxsim's NQL API itself, env.Latency per call.
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	nx, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: s.tenant("eu"), TokenURL: s.tenant("eu"),
		ClientID: "eu-client", ClientSecret: config.Secret("eu-client-secret"), HTTPClient: &http.Client{Transport: tr}, RetryFor: time.Nanosecond})
	if err != nil {
		return nil, err
	}
	defer nx.CloseIdleConnections()
	direct := func(query string) func(ctx context.Context, i int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			_, err := nx.Execute(ctx, query, map[string]string{"device_name": devices[i%len(devices)]})
			var ne *nexthink.Error
			switch {
			case err == nil:
				return http.StatusOK, nil
			case errors.As(err, &ne) && ne.Status != 0:
				return ne.Status, nil
			}
			return 0, err
		}
	}
	if _, err := direct(diagnosisCachedQuery)(ctx, 0); err != nil { // the token, outside the measurement
		return nil, err
	}
	fmt.Fprintf(env.Log, "nxsim directly, %s and %s at %g/s for %s each\n", diagnosisCachedQuery, diagnosisLiveQuery, env.DirectRate, env.Duration)
	directCached := openLoop(ctx, env.DirectRate, env.Duration, direct(diagnosisCachedQuery))
	directLive := openLoop(ctx, env.DirectRate, env.Duration, direct(diagnosisLiveQuery))

	// 3. Throughput of the cached path with one and two topics worker processes.
	var scale [2]loadResult
	for n := 1; n <= 2; n++ {
		fmt.Fprintf(env.Log, "%s with %d topics worker process(es), %d chatbots for %s\n", diagnosisCachedTopic, n, diagnosisClients, env.Duration)
		r, err := dep.withWorkers(ctx, env, base, n, func() loadResult {
			do := diagnose(diagnosisCachedTopic)
			var seq struct {
				sync.Mutex
				i int
			}
			return closedLoop(ctx, diagnosisClients, env.Duration, func(ctx context.Context) bool {
				seq.Lock()
				seq.i++
				i := seq.i
				seq.Unlock()
				code, err := do(ctx, i)
				return err == nil && code == http.StatusOK
			})
		})
		if err != nil {
			return nil, err
		}
		scale[n-1] = r
	}

	directly := "nxsim NQL API directly"
	return []Row{
		setupRow("diagnosis", env, env.Fleet, "dexbridge run ingress devices topics; cache limit raised out of the way", ""),
		{"diagnosis", "cached topic (" + diagnosisCachedTopic + "): offered load (open loop)", fmt.Sprintf("%g req/s", env.DiagnosisRate), fmt.Sprintf("%g req/s (%s)", env.DirectRate, directly), ""},
		{"diagnosis", "cached topic: throughput (200 answers)", fmt.Sprintf("%.0f req/s", cached.throughput()), fmt.Sprintf("%.1f req/s", directCached.throughput()), ""},
		{"diagnosis", "cached topic: latency p50 / p99 / p999", latencies(cached), latencies(directCached), ""},
		{"diagnosis", "cached topic: failed or not 200", fmt.Sprintf("%d of %d", cached.failed, cached.sent), fmt.Sprintf("%d of %d", directCached.failed, directCached.sent), ""},
		{"diagnosis", "cached topic: 200 answers from the cache / NQL calls at nxsim", fmt.Sprintf("%d of %d / %d", fromCache, len(cached.ok), after-before), "-", ""},
		{"diagnosis", "live topic (" + diagnosisLiveTopic + "): offered load (open loop)", fmt.Sprintf("%g req/s", env.DirectRate), fmt.Sprintf("%g req/s (%s)", env.DirectRate, directly), ""},
		{"diagnosis", "live topic: throughput (200 answers)", fmt.Sprintf("%.1f req/s", live.throughput()), fmt.Sprintf("%.1f req/s", directLive.throughput()), ""},
		{"diagnosis", "live topic: latency p50 / p99 / p999", latencies(live), latencies(directLive), ""},
		{"diagnosis", "live topic: failed or not 200", fmt.Sprintf("%d of %d", live.failed, live.sent), fmt.Sprintf("%d of %d", directLive.failed, directLive.sent), ""},
		{"diagnosis", "peak RSS (dexbridge run ingress devices topics)", mib(rss), "-", ""},
		{"diagnosis", fmt.Sprintf("cached topic, %d chatbots (closed loop): 1 topics worker process", diagnosisClients), fmt.Sprintf("%.0f req/s, p99 %s", scale[0].throughput(), ms(scale[0].percentile(0.99))), "-", ""},
		{"diagnosis", fmt.Sprintf("cached topic, %d chatbots (closed loop): 2 topics worker processes", diagnosisClients), fmt.Sprintf("%.0f req/s, p99 %s", scale[1].throughput(), ms(scale[1].percentile(0.99))), "-", ""},
	}, nil
}

// latencies is "p50 / p99 / p999" of a run.
func latencies(r loadResult) string {
	return ms(r.percentile(0.50)) + " / " + ms(r.percentile(0.99)) + " / " + ms(r.percentile(0.999))
}

// withWorkers runs `dexbridge run ingress devices` and n `dexbridge run topics`
// processes joined to its NATS server, waits until the n workers are registered,
// runs measure, and stops them all.
func (d *deployment) withWorkers(ctx context.Context, env Env, base string, n int, measure func() loadResult) (loadResult, error) {
	stopFront, _, err := d.serve(ctx, env, base, "ingress", "devices")
	if err != nil {
		return loadResult{}, err
	}
	defer stopFront()
	natsURL, err := d.natsURL()
	if err != nil {
		return loadResult{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var workers []*exec.Cmd
	defer func() {
		cancel()
		for _, w := range workers {
			_ = w.Wait()
		}
	}()
	for range n {
		w := d.command(runCtx, env, "run", "topics")
		w.Env = append(append([]string(nil), d.env...), "NATS_URL="+natsURL)
		if err := w.Start(); err != nil {
			return loadResult{}, err
		}
		workers = append(workers, w)
	}
	if err := waitServices(ctx, natsURL, "topics", n, time.Minute); err != nil {
		return loadResult{}, err
	}
	return measure(), nil
}

// waitServices waits until n instances of the NATS micro service name answer a ping.
func waitServices(ctx context.Context, natsURL, name string, n int, within time.Duration) error {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline := time.Now().Add(within)
	for {
		inbox := nats.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			return err
		}
		if err := nc.PublishRequest("$SRV.PING."+name, inbox, nil); err != nil {
			return err
		}
		seen := 0
		for {
			if _, err := sub.NextMsg(200 * time.Millisecond); err != nil {
				break
			}
			seen++
		}
		_ = sub.Unsubscribe()
		if seen >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d %s workers after %s", seen, n, name, within)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// queryCount is how many times the tenant ran a saved query.
func (s *sim) queryCount(ctx context.Context, tenant, query string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.tenant(tenant)+"/_nxsim/counters", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var c struct {
		Queries map[string]int64 `json:"queries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return 0, fmt.Errorf("nxsim counters: %w", err)
	}
	return c.Queries[query], nil
}

// sourceCount counts the answers by topic and source.
type sourceCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *sourceCount) add(k string) { c.mu.Lock(); c.n[k]++; c.mu.Unlock() }
func (c *sourceCount) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}
func (c *sourceCount) reset() { c.mu.Lock(); c.n = map[string]int{}; c.mu.Unlock() }
