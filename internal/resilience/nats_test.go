package resilience_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestNATSRestartUnderLoad runs `dexbridge run ingress devices topics webhooks`
// (one process, in this test binary) on a NATS server of its own (JetStream on disk,
// every write synced), under load from four chatbots and two Nexthink webhook
// senders. The webhooks worker takes two at a time and diagnoses each one's device
// live (the tenant answers in 200 ms), so a backlog of accepted webhooks waits in
// the stream. The server is shut down, left down for a few seconds, and started
// again on the same port and store directory.
//
// It proves that the clients reconnect on their own and service resumes; that
// requests during the gap are answered 503 with Retry-After at once (the bus being
// down) or within the lost-after bound (those in flight), never hang; and that every
// webhook answered 202, before or after the restart, is processed: none is lost, the
// backlog accepted before the restart is worked off after it. Requests in flight
// when NATS went away wait at most the lost-after bound (a webhook's publish, the
// publish timeout); those sent while it is away are refused at once.
func TestNATSRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the webhooks in flight at the restart to be redelivered")
	}
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", "resilience-webhook-password")
	natsDir := t.TempDir()
	srv := testenv.StartNATS(t, natsDir)
	port := srv.Addr().(*net.TCPAddr).Port
	sim := discoverytest.StartSim(t, nil)
	dbURL := testenv.PostgresURL(t)
	fillCache(t, sim, dbURL)
	key := apiKey(t, dbURL)
	cfg := testConfig(t, sim, srv.ClientURL(), dbURL)
	cfg.Webhooks.File = filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml")
	cfg.Webhooks.Concurrency = 2
	base, stop := startProcess(t, cfg, "ingress", "devices", "topics", "webhooks")
	discoverytest.SetFaults(t, sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{"nql": {FixedMS: 200}}})

	c := newClient(base, key)
	chatbot := []func() outcome{
		func() outcome { return c.do(http.MethodGet, "/api/v1/devices?username=jdoe", "") },
		func() outcome { return c.do(http.MethodGet, "/api/v1/topics", "") },
		func() outcome {
			return c.do(http.MethodPost, "/api/v1/topics/l1_device_checklist/diagnosis", `{"device":"PC-HEALTHY"}`)
		},
	}
	var sent atomic.Int64
	var mu sync.Mutex
	accepted := map[string]time.Time{} // webhook id: when its 202 came
	hook := &http.Client{Timeout: time.Minute}
	webhook := func() outcome {
		n := sent.Add(1)
		o := outcome{what: "POST /api/v1/webhooks/nexthink", expect: []int{http.StatusAccepted}}
		body := fmt.Sprintf(`{"monitor":"Outlook crashes","status":"open","device":"PC-OUTLOOK-PLUGIN","user":"hjordan","trigger_time":"2026-01-02 03:04:%02d","context":"%d"}`, n%60, n)
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/webhooks/nexthink", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("resilience-%d", n))
		req.SetBasicAuth("nexthink", "resilience-webhook-password")
		w := newClient(base, "")
		w.http = hook
		o = w.send(req, o)
		if o.status == http.StatusAccepted {
			var acc struct {
				ID string `json:"id"`
			}
			o.decode(t, &acc)
			mu.Lock()
			accepted[acc.ID] = time.Now()
			mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond) // about 50 webhooks a second from each sender
		return o
	}
	l := startLoad(t, 6, func(i, k int) outcome {
		if i < 2 {
			return webhook()
		}
		return chatbot[(i+k)%len(chatbot)]()
	})
	// A backlog: the senders outpace the worker, which takes two webhooks at a time.
	acceptedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	waitFor(t, "webhooks accepted before the restart", time.Minute, func() bool { return acceptedCount() >= 60 })

	downAt := time.Now()
	srv.Shutdown()
	srv.WaitForShutdown()
	ready := newClient(base, "")
	waitFor(t, "readiness to say NATS is unavailable", 30*time.Second, func() bool {
		return ready.do(http.MethodGet, "/readyz", "").status == http.StatusServiceUnavailable
	})
	knownDown := time.Now()
	// Chatbots and senders get their answers while NATS is still away.
	answeredInGap := func(o outcome) bool { return o.start.After(knownDown) && o.err == nil }
	waitFor(t, "requests answered while NATS is down", 30*time.Second, func() bool {
		return l.count(answeredInGap) >= 30 && time.Since(downAt) > 3*time.Second
	})
	mu.Lock()
	acceptedBefore := len(accepted)
	mu.Unlock()

	upAt := time.Now()
	testenv.StartNATSOnPort(t, natsDir, port)
	resumed := waitFor(t, "service to resume", time.Minute, func() bool {
		return ready.do(http.MethodGet, "/readyz", "").status == http.StatusOK
	})
	after := func(o outcome) bool { return o.start.After(upAt.Add(resumed)) && o.success() }
	waitFor(t, "chatbots and webhooks served again", time.Minute, func() bool {
		return l.count(after) >= 100 && acceptedCount() >= acceptedBefore+30
	})
	all := l.finish()
	checkClean(t, all)
	// Service has resumed for good: the last requests all got their usual answer (a
	// clean 503 just after the reconnection is allowed, while the client settles).
	byStart := slices.SortedFunc(slices.Values(all), func(a, b outcome) int { return a.start.Compare(b.start) })
	for _, o := range byStart[len(byStart)-50:] {
		if !o.success() {
			t.Errorf("at the end, after the restart: %s %s, want the usual answer", o, o.body)
		}
	}
	settled := 0
	for _, o := range all {
		if o.start.After(upAt.Add(resumed)) && !o.success() {
			settled++
		}
	}

	// Every webhook answered 202 is processed, none lost.
	pool, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := store.New(pool)
	mu.Lock()
	want := len(accepted)
	mu.Unlock()
	var processedAfter int
	var firstAfter time.Time
	waitFor(t, "every accepted webhook processed", 2*time.Minute, func() bool {
		got, err := db.WebhookDeliveries(context.Background(), "nexthink")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		done, late := 0, 0
		for _, d := range got {
			at, ok := accepted[d.WebhookID]
			if !ok || d.Outcome == store.WebhookFailed {
				continue
			}
			done++
			if at.Before(downAt) && d.ProcessedAt.After(upAt) {
				late++
			}
			if d.ProcessedAt.After(upAt) && (firstAfter.IsZero() || d.ProcessedAt.Before(firstAfter)) {
				firstAfter = d.ProcessedAt
			}
		}
		processedAfter = late
		return done == want
	})
	if processedAfter == 0 {
		t.Errorf("no webhook accepted before the restart was processed after it: the backlog the test relies on was not there")
	}
	if err := stop(); err != nil {
		t.Errorf("stop after the restart: got %v, want a clean stop", err)
	}
	var gap []outcome
	for _, o := range all {
		if o.start.After(downAt) && o.start.Before(upAt) {
			gap = append(gap, o)
		}
		// Once the process knows NATS is gone, a request is refused at once, not
		// buffered until NATS comes back or the request times out.
		if o.start.After(knownDown) && o.start.Before(upAt) && o.took > time.Second {
			t.Errorf("during the gap: %s, want an answer at once", o)
		}
	}
	var hooks []outcome
	for _, o := range all {
		if strings.Contains(o.what, "webhooks") {
			hooks = append(hooks, o)
		}
	}
	hc, hl := summary(hooks)
	t.Logf("webhooks: %v longest %s; first processed %s after the restart", hc, hl, firstAfter.Sub(upAt))
	counts, longest := summary(gap)
	t.Logf("NATS down for %s, service back %s after the restart (%d clean refusals after that); %d requests in the gap %v, longest %s; %d webhooks accepted (%d before the restart), %d of those processed after it",
		upAt.Sub(downAt).Round(time.Millisecond), resumed.Round(time.Millisecond), settled, len(gap), counts, longest.Round(time.Millisecond),
		want, acceptedBefore, processedAfter)
}
