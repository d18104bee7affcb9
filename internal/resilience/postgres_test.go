package resilience_test

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestPostgresOutage runs `dexbridge run ingress devices topics remoteactions
// discovery` (one process, in this test binary) whose every PostgreSQL connection
// goes through a TCP proxy, under load from six chatbots reading devices, diagnoses,
// the status, the proactive feed and executions, revoking API keys and starting
// discoveries. The proxy is cut (every connection reset, new ones refused, as when
// PostgreSQL restarts), then restored; the server itself is never touched. Right
// after the cut, while the API key is still in the ingress's cache, every kind of
// request is sent at once, so each handler meets the outage itself.
//
// It proves that during the gap every request is answered at once with a 503
// problem and Retry-After (never a 500 carrying a database error, never a hang),
// that readiness says postgres is unavailable, and that the pool recovers on its own
// once PostgreSQL is back: readiness and every endpoint answer again, with no
// restart.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("cuts PostgreSQL under load and waits for the pool to recover")
	}
	sim := discoverytest.StartSim(t, nil)
	dbURL := testenv.PostgresURL(t)
	fillCache(t, sim, dbURL)
	key := apiKey(t, dbURL)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	cfg := testConfig(t, sim, testenv.NATSURL(t), u.String())
	base, _ := startProcess(t, cfg, "ingress", "devices", "topics", "remoteactions", "discovery")
	c := newClient(base, key)

	requests := []func() outcome{
		func() outcome { return c.do(http.MethodGet, "/api/v1/devices?username=jdoe", "") },
		func() outcome { return c.do(http.MethodGet, "/api/v1/devices/PC-HEALTHY", "") },
		func() outcome {
			return c.do(http.MethodPost, "/api/v1/topics/l1_device_checklist/diagnosis", `{"device":"PC-HEALTHY"}`)
		},
		func() outcome { return c.do(http.MethodGet, "/api/v1/topics", "") },
		func() outcome { return c.do(http.MethodGet, "/api/v1/status", "") },
		func() outcome { return c.do(http.MethodGet, "/api/v1/proactive/events", "") },
		func() outcome {
			o := c.do(http.MethodGet, "/api/v1/remote-actions/executions/ex_"+strings.Repeat("0", 32), "")
			o.expect = []int{http.StatusNotFound}
			return o
		},
		func() outcome {
			o := c.do(http.MethodDelete, "/api/v1/api-keys/key_0123456789abcdef", "")
			o.expect = []int{http.StatusNotFound}
			return o
		},
		func() outcome {
			o := c.do(http.MethodPost, "/api/v1/admin/discovery", `{"instance":"eu"}`)
			o.expect = []int{http.StatusAccepted, http.StatusConflict}
			return o
		},
	}
	// every sends each kind of request once, all at once.
	every := func() []outcome {
		out := make([]outcome, len(requests))
		var wg sync.WaitGroup
		for k, r := range requests {
			wg.Go(func() { out[k] = r() })
		}
		wg.Wait()
		return out
	}
	l := startLoad(t, 6, func(i, k int) outcome { return requests[(i+k)%len(requests)]() })
	waitFor(t, "answers before the outage", time.Minute, func() bool { return l.count(outcome.success) >= 100 })

	ready := func() outcome { return newClient(base, "").do(http.MethodGet, "/readyz", "") }
	every() // the key is fresh in the ingress's cache
	cutAt := time.Now()
	proxy.Cut()
	first := every()
	var notReady outcome
	waitFor(t, "readiness to say postgres is unavailable", 30*time.Second, func() bool {
		notReady = ready()
		return notReady.status == http.StatusServiceUnavailable
	})
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	notReady.decode(t, &body)
	if body.Checks["postgres"] != "unavailable" || body.Checks["nats"] != "ok" || notReady.retryAfter == "" {
		t.Errorf("readiness during the outage: got %s %+v, Retry-After %q; want postgres unavailable, nats ok, with Retry-After",
			notReady, body, notReady.retryAfter)
	}
	// The outage lasts a few seconds, past the ingress's cache of API keys, with
	// every endpoint asked many times.
	inGap := func(o outcome) bool { return o.start.After(cutAt) }
	waitFor(t, "requests during the outage", time.Minute, func() bool {
		return l.count(inGap) >= 100 && time.Since(cutAt) > 3*time.Second
	})

	restoredAt := time.Now()
	proxy.Restore()
	recovered := waitFor(t, "readiness after the outage", time.Minute, func() bool {
		o := ready()
		if o.status != http.StatusOK {
			return false
		}
		o.decode(t, &body)
		return body.Checks["postgres"] == "ok"
	})
	after := func(o outcome) bool { return o.start.After(restoredAt.Add(recovered)) && o.success() }
	waitFor(t, "every endpoint answering again", time.Minute, func() bool { return l.count(after) >= 3*len(requests) })
	all := append(l.finish(), first...)

	checkClean(t, all)
	for _, o := range first {
		if o.status != http.StatusServiceUnavailable && !o.success() {
			t.Errorf("at the cut: %s, want 503 or the usual answer", o)
		}
	}
	var gap []outcome
	for _, o := range all {
		if o.start.After(cutAt) && o.start.Add(o.took).Before(restoredAt) {
			gap = append(gap, o)
		}
	}
	unavailable, longest := 0, time.Duration(0)
	for _, o := range gap {
		longest = max(longest, o.took)
		if o.status == http.StatusServiceUnavailable {
			unavailable++
			if strings.Contains(string(o.body), "SQLSTATE") || strings.Contains(string(o.body), net.JoinHostPort(u.Hostname(), u.Port())) {
				t.Errorf("a 503 during the outage leaks database details: %s", o.body)
			}
		}
	}
	if unavailable == 0 {
		t.Errorf("no request answered 503 during the outage (%d requests): was PostgreSQL cut at all?", len(gap))
	}
	// Every endpoint answers again after the outage, the pool having recovered.
	for _, o := range all {
		if o.start.After(restoredAt.Add(recovered)) && !o.success() {
			t.Errorf("after recovery: %s, want the usual answer", o)
		}
	}
	counts, _ := summary(gap)
	t.Logf("outage of %s: %d requests in the gap %v, longest %s; ready again %s after PostgreSQL came back",
		restoredAt.Sub(cutAt).Round(time.Millisecond), len(gap), counts, longest.Round(time.Millisecond), recovered.Round(time.Millisecond))
}
