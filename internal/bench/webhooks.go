package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/internal/signature"
)

// The webhooks scenario's settings.
const (
	webhookPassword    = "dexbench-webhook-password"
	webhookCallbackKey = "dexbench-callback-secret-0123"
	webhookConcurrency = 32 // senders at once while measuring acceptance
	webhookE2ERate     = 50 // webhooks per second while measuring webhook-to-callback latency
)

// webhookRules are the scenario's webhook rules: the nexthink source of
// config/webhooks.yaml with one monitor that names no topic, so the worker runs no
// diagnosis before the event (its cost is the diagnosis scenario's; without a topics
// worker each attempt would wait for NATS's no-responders retry instead).
const webhookRules = `suppression_window: 4h
sources:
  - name: nexthink
    description: dexbench
    auth:
      type: basic
      username: nexthink
    delivery_id_header: Idempotency-Key
    fields:
      monitor: monitor
      status: status
      device: device
      user: user
      trigger_time: trigger_time
      recovery_time: recovery_time
      context: context
      priority: priority
    time_zone: UTC
    max_users_per_device: 1
    message: Hi {{user}}, Nexthink noticed a problem on {{device}} ({{monitor}}).
    monitors:
      - name: Slow PC
        message: Hi {{user}}, {{device}} has been running slowly. I can help you fix it now.
`

// webhooksScenario measures the webhook path of `dexbridge run` with its embedded
// NATS (file storage, every write synced):
//
//   - accepted webhooks per second: 32 senders POST distinct Nexthink webhooks to
//     `dexbridge run ingress`, each answered 202 only after JetStream's ack. Baseline:
//     the same number of concurrent JetStream publishes to a file stream of the same
//     server, from a Go client, without HTTP or dexbridge.
//   - the backlog that built up, processed by `dexbridge run ingress webhooks proactive`:
//     webhook to proactive event to signed callback, per second.
//   - webhook-to-callback latency at a fixed arrival rate (open loop): from the POST
//     to the chatbot's callback receiving the event.
//
// The webhooks name devices of the cache (a discovery fills it first) with their
// users, each device once (so suppression lets every one through), for a monitor
// without a topic (webhookRules): the path measured is authentication, the durable
// store, deduplication, the worker's resolution in the cache, the proactive event and
// the signed callback, without a diagnosis before the event (that is the diagnosis
// scenario's). No call reaches the tenant but the discovery's.
func webhooksScenario(ctx context.Context, env Env) ([]Row, error) {
	st, err := startStack(ctx, env, env.Fleet, 500)
	if err != nil {
		return nil, err
	}
	defer st.close()
	dep := st.dep
	if err := dep.discover(ctx, env); err != nil {
		return nil, err
	}
	targets, err := st.db.webhookTargets(ctx)
	if err != nil {
		return nil, err
	}
	cb, err := newCallbackSink()
	if err != nil {
		return nil, err
	}
	defer cb.close()
	if env.WebhooksConcurrency > 0 {
		f, err := os.OpenFile(dep.config, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = fmt.Fprintf(f, "webhooks:\n  concurrency: %d\n", env.WebhooksConcurrency)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			return nil, err
		}
	}
	rules := filepath.Join(dep.dir, "webhooks.yaml")
	if err := os.WriteFile(rules, []byte(webhookRules), 0o600); err != nil {
		return nil, err
	}
	dep.env = append(dep.env, "WEBHOOK_NEXTHINK_PASSWORD="+webhookPassword, "PROACTIVE_CALLBACK_URL="+cb.url,
		"PROACTIVE_CALLBACK_SECRET="+webhookCallbackKey, "WEBHOOKS_FILE="+rules)
	base := "http://" + dep.listen
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	sender := &webhookSender{client: client, url: base + "/api/v1/webhooks/nexthink", sent: map[string]time.Time{}, targets: targets}

	// 1. Acceptance, ingress alone.
	stopIngress, ingress, err := dep.serve(ctx, env, base, "ingress")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "warm-up\n")
	sender.closedLoop(ctx, webhookConcurrency, time.Second)
	fmt.Fprintf(env.Log, "webhooks accepted, %d senders for %s\n", webhookConcurrency, env.Duration)
	acc := sender.closedLoop(ctx, webhookConcurrency, env.Duration)
	natsURL, err := dep.natsURL()
	if err != nil {
		stopIngress()
		return nil, err
	}
	fmt.Fprintf(env.Log, "baseline: JetStream publishes, %d publishers for %s\n", webhookConcurrency, env.Duration)
	js, err := jetStreamBaseline(ctx, natsURL, webhookConcurrency, env.Duration)
	stopIngress()
	if err != nil {
		return nil, err
	}
	rssIngress := peakRSS(ingress)

	// 2. The backlog, through the worker and the dispatcher.
	backlog := sender.count()
	start := time.Now()
	wlog := &workerLog{}
	stopAll, all, err := dep.serveLogged(ctx, env, base, wlog, "ingress", "webhooks", "proactive")
	if err != nil {
		return nil, err
	}
	defer stopAll()
	fmt.Fprintf(env.Log, "processing the backlog of %d webhooks\n", backlog)
	if err := cb.waitFor(ctx, backlog, 10*time.Minute); err != nil {
		return nil, err
	}
	drain := time.Since(start)
	worker := wlog.summary(start, start.Add(drain))

	// 3. Webhook to callback at a fixed rate.
	fmt.Fprintf(env.Log, "webhook to callback at %d/s for %s\n", webhookE2ERate, env.Duration)
	e2e := sender.openLoop(ctx, webhookE2ERate, env.Duration)
	if err := cb.waitFor(ctx, sender.count(), time.Minute); err != nil {
		return nil, err
	}
	lat := cb.latencies(sender, e2e)
	stopAll()
	rssAll := peakRSS(all)

	conc := "webhooks.concurrency default"
	if env.WebhooksConcurrency > 0 {
		conc = fmt.Sprintf("webhooks.concurrency %d", env.WebhooksConcurrency)
	}
	return []Row{
		setupRow("webhooks", env, env.Fleet, "dexbridge run ingress, then run ingress webhooks proactive; embedded NATS, sync always; "+conc,
			"; not called: a monitor without a topic (no diagnosis before the event)"),
		{"webhooks", "accepted (202 after the JetStream ack, sync always)", fmt.Sprintf("%.0f webhooks/s", acc.throughput()), fmt.Sprintf("%.0f publishes/s (JetStream alone)", js.throughput()), ""},
		{"webhooks", "202 latency p50 / p99 / p999", latencies(acc), latencies(js), ""},
		{"webhooks", "failed or not 202", fmt.Sprintf("%d of %d", acc.failed, acc.sent), fmt.Sprintf("%d of %d", js.failed, js.sent), ""},
		{"webhooks", "backlog processed to signed callbacks", fmt.Sprintf("%d in %s: %.0f/s", backlog, drain.Round(time.Millisecond), float64(backlog)/drain.Seconds()), "-", ""},
		{"webhooks", "backlog: drain rate / intake rate", fmt.Sprintf("%.2f", float64(backlog)/drain.Seconds()/acc.throughput()), "1",
			target(">= 0.5", float64(backlog)/drain.Seconds() >= 0.5*acc.throughput())},
		{"webhooks", "backlog: where the time went (the worker's log)", worker, "-", ""},
		{"webhooks", fmt.Sprintf("webhook to callback at %d/s, p50", webhookE2ERate), ms(lat.percentile(0.50)), "-", ""},
		{"webhooks", fmt.Sprintf("webhook to callback at %d/s, p99", webhookE2ERate), ms(lat.percentile(0.99)), "-", ""},
		{"webhooks", fmt.Sprintf("webhook to callback at %d/s, delivered", webhookE2ERate), fmt.Sprintf("%d of %d", len(lat.ok), lat.sent), "-", ""},
		{"webhooks", "webhook to callback, max", ms(lat.percentile(1)), "-", ""},
		{"webhooks", "callbacks with a bad signature", fmt.Sprint(cb.badSignatures.Load()), "-", ""},
		{"webhooks", "peak RSS (run ingress / run ingress webhooks proactive)", mib(rssIngress) + " / " + mib(rssAll), "-", ""},
	}, nil
}

// serve starts `dexbridge run <services>` and waits until it is ready; stop ends it.
func (d *deployment) serve(ctx context.Context, env Env, base string, services ...string) (func(), *exec.Cmd, error) {
	return d.serveLogged(ctx, env, base, nil, services...)
}

// serveLogged is serve with the process's log at info level written to log (when
// not nil).
func (d *deployment) serveLogged(ctx context.Context, env Env, base string, log io.Writer, services ...string) (func(), *exec.Cmd, error) {
	runCtx, cancel := context.WithCancel(ctx)
	cmd := d.command(runCtx, env, append([]string{"run"}, services...)...)
	if log != nil {
		cmd.Stdout = log // `dexbridge run` logs to stdout
		cmd.Env = append(slices.Clone(cmd.Env), "LOG_LEVEL=info")
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, nil, err
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); _ = cmd.Wait() }) }
	if err := waitHTTP(ctx, base+"/readyz", time.Minute); err != nil {
		stop()
		return nil, nil, err
	}
	return stop, cmd, nil
}

// natsURL is the deployment's embedded NATS server.
func (d *deployment) natsURL() (string, error) {
	raw, err := os.ReadFile(d.config)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(raw), "nats:\n  listen: ")
	addr, _, _ := strings.Cut(rest, "\n")
	if !ok || addr == "" {
		return "", fmt.Errorf("no nats.listen in %s", d.config)
	}
	return "nats://" + addr, nil
}

// webhookSender posts distinct Nexthink webhooks and remembers when each was sent.
type webhookSender struct {
	client *http.Client
	url    string
	seq    atomic.Int64
	mu     sync.Mutex
	sent   map[string]time.Time // webhook id -> when the POST started
	// targets are the devices the webhooks name, in turn (more than the scenario
	// sends, so suppression lets every one through).
	targets []webhookTarget
}

// webhookTarget is a device of the cache and its user.
type webhookTarget struct{ Device, User string }

func (w *webhookSender) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sent)
}

// post sends webhook number i; 202 with a new id is success.
func (w *webhookSender) post(ctx context.Context, started time.Time) (int, string, error) {
	i := w.seq.Add(1)
	// A device of its own each, so suppression lets every one through.
	t := w.targets[int(i-1)%len(w.targets)]
	body, _ := json.Marshal(map[string]string{"monitor": "Slow PC", "status": "open", "device": t.Device, "user": t.User,
		"trigger_time": "2026-01-02 03:04:05", "recovery_time": "", "context": "", "priority": "medium"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("dexbench-%d-%d", started.UnixNano(), i))
	req.SetBasicAuth("nexthink", webhookPassword)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var a struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Duplicate {
		return resp.StatusCode, "", fmt.Errorf("answer %d: %v, duplicate %v", resp.StatusCode, err, a.Duplicate)
	}
	if resp.StatusCode == http.StatusAccepted {
		w.mu.Lock()
		w.sent[a.ID] = started
		w.mu.Unlock()
	}
	return resp.StatusCode, a.ID, nil
}

// closedLoop runs n senders back to back for d.
func (w *webhookSender) closedLoop(ctx context.Context, n int, d time.Duration) loadResult {
	return closedLoop(ctx, n, d, func(ctx context.Context) bool {
		code, _, err := w.post(ctx, time.Now())
		return err == nil && code == http.StatusAccepted
	})
}

// openLoop sends rate webhooks per second for d; it returns their ids.
func (w *webhookSender) openLoop(ctx context.Context, rate float64, d time.Duration) []string {
	var mu sync.Mutex
	var ids []string
	openLoop(ctx, rate, d, func(ctx context.Context, _ int) (int, error) {
		code, id, err := w.post(ctx, time.Now())
		if err == nil && id != "" {
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}
		if code == http.StatusAccepted {
			code = http.StatusOK
		}
		return code, err
	})
	return ids
}

// closedLoop runs n workers calling do back to back for d, timing each call.
func closedLoop(ctx context.Context, n int, d time.Duration, do func(ctx context.Context) bool) loadResult {
	var mu sync.Mutex
	var r loadResult
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var ok []time.Duration
			sent, failed := 0, 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				good := do(ctx)
				sent++
				if good {
					ok = append(ok, time.Since(t))
				} else {
					failed++
				}
			}
			mu.Lock()
			r.ok = append(r.ok, ok...)
			r.sent += sent
			r.failed += failed
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	slices.Sort(r.ok)
	return r
}

// jetStreamBaseline publishes to a file stream of the same server from n publishers
// for d: the floor that durability alone costs.
func jetStreamBaseline(ctx context.Context, url string, n int, d time.Duration) (loadResult, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return loadResult{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return loadResult{}, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "DEXBENCH_BASELINE", Subjects: []string{"dexbench.baseline"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		return loadResult{}, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), "DEXBENCH_BASELINE") }()
	payload := bytes.Repeat([]byte("x"), 600) // about a webhook message's size
	var seq atomic.Int64
	return closedLoop(ctx, n, d, func(ctx context.Context) bool {
		_, err := js.Publish(ctx, "dexbench.baseline", payload, jetstream.WithMsgID(fmt.Sprint(seq.Add(1))))
		return err == nil
	}), nil
}

// callbackSink is the chatbot: it verifies each callback's signature and notes when
// each webhook's event arrived.
type callbackSink struct {
	srv           *http.Server
	url           string
	mu            sync.Mutex
	got           map[string]time.Time // webhook id -> first callback
	badSignatures atomic.Int64
}

func newCallbackSink() (*callbackSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &callbackSink{url: "http://" + ln.Addr().String() + "/dexbridge", got: map[string]time.Time{}}
	c.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		raw, _ := io.ReadAll(r.Body)
		if signature.Verify([]byte(webhookCallbackKey), r.Header.Get(signature.Header), raw, now, time.Minute) != nil {
			c.badSignatures.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var doc struct {
			Event struct {
				WebhookID string `json:"webhook_id"`
			} `json:"event"`
		}
		_ = json.Unmarshal(raw, &doc)
		c.mu.Lock()
		if _, seen := c.got[doc.Event.WebhookID]; !seen {
			c.got[doc.Event.WebhookID] = now
		}
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *callbackSink) close() { _ = c.srv.Close() }

func (c *callbackSink) waitFor(ctx context.Context, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		got := len(c.got)
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d callbacks of %d after %s", got, n, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// latencies are, for the given webhooks, the times from POST to callback.
func (c *callbackSink) latencies(s *webhookSender, ids []string) loadResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var r loadResult
	for _, id := range ids {
		r.sent++
		got, ok := c.got[id]
		if !ok {
			r.failed++
			continue
		}
		r.ok = append(r.ok, got.Sub(s.sent[id]))
	}
	slices.Sort(r.ok)
	return r
}

// workerLog reads the JSON log of the webhooks worker and the dispatcher: it sums
// up the worker's "webhook processed" lines (the time each webhook waited in the
// stream and spent in each stage of its batch, and the batch's size) and the
// dispatcher's "callback delivered" lines (each callback's HTTP round trip).
type workerLog struct {
	mu      sync.Mutex
	partial []byte
	n       int
	batches float64 // the sum of 1/size over the webhooks: the number of batches
	largest int
	last    time.Time
	sum     struct{ total, queued, resolve, diagnose, store, publish float64 }
	cb      struct {
		n           int
		sum         float64
		first, last time.Time
	}
}

func (l *workerLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte("\n"))
		if !ok {
			break
		}
		l.line(line)
		l.partial = append(l.partial[:0], rest...)
	}
	return len(p), nil
}

func (l *workerLog) line(b []byte) {
	if bytes.Contains(b, []byte(`"callback delivered"`)) {
		var m struct {
			Time     time.Time `json:"time"`
			Duration float64   `json:"duration_ms"`
		}
		if json.Unmarshal(b, &m) != nil {
			return
		}
		if l.cb.n == 0 || m.Time.Before(l.cb.first) {
			l.cb.first = m.Time
		}
		if m.Time.After(l.cb.last) {
			l.cb.last = m.Time
		}
		l.cb.n++
		l.cb.sum += m.Duration
		return
	}
	if !bytes.Contains(b, []byte(`"webhook processed"`)) {
		return
	}
	var m struct {
		Time     time.Time `json:"time"`
		Total    float64   `json:"duration_ms"`
		Queued   float64   `json:"queued_ms"`
		Batch    int       `json:"batch"`
		Resolve  float64   `json:"resolve_ms"`
		Diagnose float64   `json:"diagnose_ms"`
		Store    float64   `json:"store_ms"`
		Publish  float64   `json:"publish_ms"`
	}
	if json.Unmarshal(b, &m) != nil {
		return
	}
	l.n++
	l.batches += 1 / float64(max(m.Batch, 1))
	l.largest = max(l.largest, m.Batch)
	if m.Time.After(l.last) {
		l.last = m.Time
	}
	l.sum.total += m.Total
	l.sum.queued += m.Queued
	l.sum.resolve += m.Resolve
	l.sum.diagnose += m.Diagnose
	l.sum.store += m.Store
	l.sum.publish += m.Publish
}

// summary says how many webhooks the worker processed between start and end, how
// fast, in batches of what size, the mean time of each stage of a webhook's batch
// (shared by the batch's webhooks), then the dispatcher's callbacks: their mean
// HTTP round trip and how long after the worker's last webhook the last callback
// arrived.
func (l *workerLog) summary(start, end time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return "no log line of the worker"
	}
	n := float64(l.n)
	work := l.last.Sub(start)
	out := fmt.Sprintf("worker: %d processed in %.1f s (%.0f/s), %.0f batches of %.1f on average (largest %d); "+
		"mean per webhook: waited in the stream %.0f ms, its batch in the worker %.1f ms (resolve %.1f, diagnose %.1f, store %.1f, publish %.1f)",
		l.n, work.Seconds(), n/work.Seconds(), l.batches, n/max(l.batches, 1), l.largest, l.sum.queued/n, l.sum.total/n,
		l.sum.resolve/n, l.sum.diagnose/n, l.sum.store/n, l.sum.publish/n)
	if l.cb.n > 0 {
		out += fmt.Sprintf("; dispatcher: %d callbacks delivered, HTTP round trip %.1f ms on average", l.cb.n, l.cb.sum/float64(l.cb.n))
	}
	return out + fmt.Sprintf("; last callback %.1f s after the worker's last webhook", end.Sub(l.last).Seconds())
}

// webhookTargets are the devices of the cache and their users, each device once:
// an alert about a device nobody is known to use is held, not delivered.
func (db *database) webhookTargets(ctx context.Context) ([]webhookTarget, error) {
	rows, _ := db.pool.Query(ctx, `SELECT DISTINCT ON (d.collector_uid) d.name, u.name
		FROM devices d JOIN user_devices ud ON ud.collector_uid = d.collector_uid AND ud.instance = d.instance
		JOIN users u ON u.name_key = ud.user_key AND u.instance = ud.instance
		ORDER BY d.collector_uid, ud.last_activity DESC`)
	targets, err := pgx.CollectRows(rows, pgx.RowToStructByPos[webhookTarget])
	if err == nil && len(targets) == 0 {
		err = errors.New("no device with a user in the cache")
	}
	if err != nil {
		return nil, fmt.Errorf("devices of the cache: %w", err)
	}
	return targets, nil
}
