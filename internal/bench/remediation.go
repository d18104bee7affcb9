package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// The remediation scenario's settings.
const (
	remediationInterval = 5 * time.Second  // the poller's interval (the default)
	remediationWindow   = 30 * time.Second // NQL calls are counted over six ticks
	remediationSamples  = 50               // executions whose completion-to-answer latency is measured
	naiveConcurrency    = 128              // the naive poller's calls in flight: enough to keep up with 1000 at 300 ms
	naiveQuery          = "#get_remote_action_result"
	groupedQuery        = "#dexbridge_remote_action_results"
)

// remediationScenario measures the remote-action poller of `dexbridge run ingress
// remoteactions poller` against nxsim:
//
//   - NQL calls per minute that reach the instance with 1, 100 and 1000 pending
//     executions (triggered through the REST API, kept pending by nxsim), counted by
//     nxsim per saved query over 30 s. Baseline, in the same run and the same window: a
//     naive poller that asks #get_remote_action_result once per pending execution every
//     5 s (128 at a time, without a rate limit), as chatbots polling each execution
//     would.
//   - latency from nxsim completing an execution to the chatbot's long poll
//     (GET /api/v1/remote-actions/executions/{id}?wait=60) returning it final: the
//     devices are offline while their executions wait; each is brought online in turn,
//     200 ms apart (so the completions fall at every phase of the poll tick), and nxsim
//     completes its execution at its next step (25 ms).
func remediationScenario(ctx context.Context, env Env) ([]Row, error) {
	st, err := startStack(ctx, env, env.Fleet, 500, "-exec-pending", "0s", "-exec-running", "0s")
	if err != nil {
		return nil, err
	}
	defer st.close()
	s, db, dep := st.sim, st.db, st.dep
	// Triggering 1000 executions quickly needs more than the default portal budget; the
	// NQL budget stays at its default, 40 per second.
	dep.env = append(dep.env, "MAX_PORTAL_REQUESTS_PER_SECOND=1000", "REMOTE_ACTION_POLL_INTERVAL="+remediationInterval.String())
	if err := dep.discover(ctx, env); err != nil {
		return nil, err
	}
	key, err := dep.apiKey(ctx, env, "read,remediate")
	if err != nil {
		return nil, err
	}
	rows, _ := db.pool.Query(ctx, `SELECT name FROM devices WHERE instance = 'eu' AND platform = 'Windows'
		AND name LIKE 'EU-%' AND last_seen > now() - interval '50 minutes' ORDER BY name LIMIT $1`, 1000+remediationSamples)
	devices, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(devices) < 1000+remediationSamples {
		return nil, fmt.Errorf("online Windows devices in the cache: %d, %v", len(devices), err)
	}
	pendingDevices, sampleDevices := devices[:1000], devices[1000:]

	base := "http://" + dep.listen
	stop, _, err := dep.serve(ctx, env, base, "ingress", "remoteactions", "poller")
	if err != nil {
		return nil, err
	}
	defer stop()
	chatbot := &chatbot{base: base, key: key, client: &http.Client{Timeout: 2 * time.Minute,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}}
	// Executions stay pending while the NQL calls are counted.
	if err := s.control(ctx, "eu", http.MethodPut, "/_nxsim/executions/settings", map[string]any{"pending_ms": int(time.Hour / time.Millisecond)}); err != nil {
		return nil, err
	}
	naive, err := nexthink.New(nexthink.Config{Instance: "eu", APIURL: s.tenant("eu"), TokenURL: s.tenant("eu"),
		ClientID: "eu-client", ClientSecret: config.Secret("eu-client-secret"), RetryFor: time.Nanosecond})
	if err != nil {
		return nil, err
	}
	defer naive.CloseIdleConnections()

	result := []Row{setupRow("remediation", env, env.Fleet, fmt.Sprintf("dexbridge run ingress remoteactions poller, poll every %s", remediationInterval),
		"; executions held pending while counting")}
	var requestIDs []string
	for _, n := range []int{1, 100, 1000} {
		fmt.Fprintf(env.Log, "triggering up to %d pending executions\n", n)
		ids, _, err := chatbot.triggerAll(ctx, pendingDevices[len(requestIDs):n])
		if err != nil {
			return nil, err
		}
		requestIDs = append(requestIDs, ids...)
		if err := sleepCtx(ctx, remediationInterval); err != nil { // the poller sees them all once
			return nil, err
		}
		if err := s.control(ctx, "eu", http.MethodPost, "/_nxsim/counters/reset", nil); err != nil {
			return nil, err
		}
		fmt.Fprintf(env.Log, "counting NQL calls with %d pending for %s, beside a naive poller\n", n, remediationWindow)
		overran := naivePoller(ctx, naive, requestIDs, remediationWindow)
		c, err := queryCounters(ctx, s, "eu")
		if err != nil {
			return nil, err
		}
		perMin := func(q string) float64 { return float64(c[q]) * float64(time.Minute) / float64(remediationWindow) }
		naiveNote := ""
		if overran > 0 {
			naiveNote = fmt.Sprintf(", %d of its ticks overran 5 s", overran)
		}
		result = append(result, Row{"remediation", fmt.Sprintf("NQL calls per minute, %d pending", n),
			fmt.Sprintf("%.0f (grouped, %d per query)", perMin(groupedQuery), 250),
			fmt.Sprintf("%.0f (naive: one query per execution every 5 s, wants %d%s)", perMin(naiveQuery), n*12, naiveNote), ""})
	}

	// Completion to answer: let the pending ones finish, then sample.
	if err := s.control(ctx, "eu", http.MethodPut, "/_nxsim/executions/settings", map[string]any{"pending_ms": 0, "running_ms": 0}); err != nil {
		return nil, err
	}
	if err := waitOpen(ctx, db, 0, 2*time.Minute); err != nil {
		return nil, err
	}
	if err := s.control(ctx, "eu", http.MethodPost, "/_nxsim/devices/online", map[string]any{"devices": sampleDevices, "online": false}); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "latency from completion to the long poll's answer, %d executions\n", remediationSamples)
	_, execIDs, err := chatbot.triggerAll(ctx, sampleDevices)
	if err != nil {
		return nil, err
	}
	if err := waitStatus(ctx, db, "waiting_for_device", len(sampleDevices), time.Minute); err != nil {
		return nil, err
	}
	lat, err := chatbot.completionLatency(ctx, s, sampleDevices, execIDs)
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, max(0, int(float64(len(lat))*p+0.5)-1))] }
	result = append(result,
		Row{"remediation", "completion to long-poll answer p50 / p99", ms(pct(0.5)) + " / " + ms(pct(0.99)),
			fmt.Sprintf("poll interval %s + one NQL call: mean %s, max %s expected", remediationInterval, remediationInterval/2+env.Latency, remediationInterval+env.Latency), ""},
		Row{"remediation", "completion to long-poll answer max", ms(pct(1)), "-", ""})
	return result, nil
}

// chatbot calls the REST API as a chatbot does.
type chatbot struct {
	base, key string
	client    *http.Client
}

func (c *chatbot) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %.300s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, json.Unmarshal(raw, out)
}

type benchExecution struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// triggerAll runs #repair_onedrive on every device (16 at a time, wait_seconds 0) and
// returns the Nexthink request ids and the execution ids, in device order.
func (c *chatbot) triggerAll(ctx context.Context, devices []string) (reqIDs, execIDs []string, err error) {
	reqIDs = make([]string, len(devices))
	execIDs = make([]string, len(devices))
	errs := make([]error, len(devices))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var e benchExecution
			_, errs[i] = c.do(ctx, http.MethodPost, "/api/v1/remote-actions/executions",
				map[string]any{"remote_action": "#repair_onedrive", "device": d, "reason": "dexbench"}, &e)
			reqIDs[i], execIDs[i] = e.RequestID, e.ID
		})
	}
	wg.Wait()
	return reqIDs, execIDs, errors.Join(errs...)
}

// completionLatency follows each execution with a long poll, brings its device online
// (200 ms after the previous one), and measures from the moment nxsim has the device
// online (it completes the execution at its next step) to the long poll's final answer.
func (c *chatbot) completionLatency(ctx context.Context, s *sim, devices, execIDs []string) ([]time.Duration, error) {
	online := make([]time.Time, len(devices))
	answered := make([]time.Time, len(devices))
	errs := make([]error, len(devices))
	var ready sync.WaitGroup
	var wg sync.WaitGroup
	var polls atomic.Int64
	for i, id := range execIDs {
		ready.Add(1)
		wg.Go(func() {
			first := true
			for {
				if first {
					ready.Done()
					first = false
				}
				var e benchExecution
				polls.Add(1)
				if _, err := c.do(ctx, http.MethodGet, "/api/v1/remote-actions/executions/"+id+"?wait=60", nil, &e); err != nil {
					errs[i] = err
					return
				}
				if e.Status == "success" || e.Status == "failure" || e.Status == "expired" || e.Status == "cancelled" {
					answered[i] = time.Now()
					return
				}
			}
		})
	}
	ready.Wait()
	if err := sleepCtx(ctx, 200*time.Millisecond); err != nil { // the long polls are in
		return nil, err
	}
	for i, d := range devices {
		if err := s.control(ctx, "eu", http.MethodPost, "/_nxsim/devices/online", map[string]any{"devices": []string{d}, "online": true}); err != nil {
			return nil, err
		}
		online[i] = time.Now()
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(devices))
	for i := range devices {
		out[i] = answered[i].Sub(online[i])
	}
	return out, nil
}

// naivePoller asks about each request id with its own query every 5 s for d,
// naiveConcurrency at a time, and returns how many of its ticks took longer than 5 s.
func naivePoller(ctx context.Context, c *nexthink.Client, requestIDs []string, d time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	overran := 0
	for ctx.Err() == nil {
		start := time.Now()
		sem := make(chan struct{}, naiveConcurrency)
		var wg sync.WaitGroup
		for _, id := range requestIDs {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				_, _ = c.Execute(ctx, naiveQuery, map[string]string{"request_id": id})
			})
		}
		wg.Wait()
		took := time.Since(start)
		if took > remediationInterval && ctx.Err() == nil {
			overran++
		}
		if sleepCtx(ctx, remediationInterval-took) != nil {
			break
		}
	}
	return overran
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitOpen waits until at most n executions are open.
func waitOpen(ctx context.Context, db *database, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var open int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device')`).Scan(&open); err != nil {
			return err
		}
		if open <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d executions still open after %s", open, within)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitStatus waits until n executions are in status.
func waitStatus(ctx context.Context, db *database, status string, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var got int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM executions WHERE status = $1`, status).Scan(&got); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d executions %s after %s", got, n, status, within)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// queryCounters reads how many times nxsim ran each saved query.
func queryCounters(ctx context.Context, s *sim, tenant string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.tenant(tenant)+"/_nxsim/counters", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var c struct {
		Queries map[string]int64 `json:"queries"`
	}
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c.Queries, err
}
