package ingress_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/admission"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// holdIdentify serves devices.identify with a worker that calls got for each request
// and then holds it until release is called (or the test ends): a busy worker.
func holdIdentify(t *testing.T, nc *nats.Conn, subjects events.Subjects, got func()) (release func()) {
	t.Helper()
	srv, err := natsrpc.NewServer(nc, "held-devices", "1.0.0", "test", 16, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	done := make(chan struct{})
	err = natsrpc.Endpoint(srv, "identify", subjects.Of(events.DevicesIdentify), events.TypeDevicesIdentifyRequest,
		func(ctx context.Context, _ events.DevicesIdentifyRequest) (events.DevicesIdentifyReply, error) {
			got()
			select {
			case <-done:
			case <-ctx.Done():
			}
			return events.DevicesIdentifyReply{Header: events.NewHeader(events.TypeDevicesIdentifyReply), Source: "cache"}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release)
	return release
}

// TestAFloodIsRefusedFastAndNothingHangs floods a real ingress (its listener, server
// and middlewares) whose worker holds every request it gets: the admission's two
// slots fill, its queue of two waits and is refused, and every other request, each on
// a new connection, is answered 503 service_unavailable with Retry-After and problem
// JSON while the two are still held. Probes answer throughout; once the worker lets
// go, the two held requests are answered and the next one is served.
func TestAFloodIsRefusedFastAndNothingHangs(t *testing.T) {
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	var held atomic.Int32
	release := holdIdentify(t, nc, subjects, func() { held.Add(1) })

	m := metrics.New()
	base := "http://" + serve(t, ingress.Options{
		Listen: "127.0.0.1:0", ShutdownTimeout: 10 * time.Second,
		RPC: natsrpc.NewClient(nc, time.Minute), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: ratelimit.NewShared(db), Subjects: subjects, Log: logging.Discard(), Metrics: m,
		MaxConnections: 256,
		Admission:      admission.New(admission.Config{Limit: 2, Queue: 2, Target: 5 * time.Millisecond, Interval: 100 * time.Millisecond}),
	})
	key := apitest.Key(t, db, "bot", "read")
	// A new connection per request, as a storm of clients without reuse: nothing may
	// wait for ever, so a hung request fails the test rather than blocking it.
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

	type answer struct {
		status     int
		retryAfter string
		ctype      string
		body       []byte
		err        error
	}
	get := func(path string) answer {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return answer{err: err}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body, err}
	}

	const flood = 60
	answers := make(chan answer, flood)
	for i := range flood {
		go func() { answers <- get(fmt.Sprintf("/api/v1/devices?username=flood-%d", i)) }()
	}
	// Every request but the two held is answered while those are held.
	refused := 0
	for range flood - 2 {
		a := <-answers
		var p struct {
			Code       string `json:"code"`
			Status     int    `json:"status"`
			RetryAfter int    `json:"retry_after"`
		}
		switch {
		case a.err != nil:
			t.Fatalf("a flooding request got no answer: %v", a.err)
		case a.status != http.StatusServiceUnavailable:
			t.Fatalf("a flooding request was answered %d while the worker holds two: %s", a.status, a.body)
		case a.retryAfter != "1" || a.ctype != "application/problem+json" || json.Unmarshal(a.body, &p) != nil ||
			p.Code != "service_unavailable" || p.Status != 503 || p.RetryAfter != 1:
			t.Fatalf("a refusal: Retry-After %q, Content-Type %q, %s; want a service_unavailable problem with Retry-After 1",
				a.retryAfter, a.ctype, a.body)
		}
		refused++
	}
	testenv.Eventually(t, "the two admitted requests at the worker", func() bool { return held.Load() == 2 })
	if h := get("/healthz"); h.err != nil || h.status != http.StatusOK {
		t.Errorf("/healthz during the flood: %d %v, want 200", h.status, h.err)
	}
	// Refused by admission control, or at accept by the listener while it refuses (a
	// refusal at accept is counted once written, which its client may read first).
	counted := func() int {
		return int(testutil.ToFloat64(m.AdmissionRefusals.WithLabelValues("queue_full")) +
			testutil.ToFloat64(m.AdmissionRefusals.WithLabelValues("queue_delay")) +
			testutil.ToFloat64(m.AdmissionRefusals.WithLabelValues("accept")))
	}
	testenv.Eventually(t, fmt.Sprintf("the metrics to count %d refusals", refused), func() bool { return counted() == refused })

	release()
	for range 2 {
		if a := <-answers; a.err != nil || a.status != http.StatusOK {
			t.Errorf("a held request after the worker let go: %d %v %s, want 200", a.status, a.err, a.body)
		}
	}
	if a := get("/api/v1/devices?username=after"); a.status != http.StatusOK {
		t.Errorf("after the flood: %d %s, want 200", a.status, a.body)
	}
	if n := testutil.ToFloat64(m.AdmissionAdmitted); n != 3 {
		t.Errorf("the metrics count %v admitted, want 3", n)
	}
}
