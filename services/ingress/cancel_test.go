package ingress_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dexbridge/dexbridge/events"
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

// TestClientCancellationIsNotAServerError: a client that closes its connection while
// the worker is still busy is logged at info with status 499 and counted so, never as
// a 500 at error.
func TestClientCancellationIsNotAServerError(t *testing.T) {
	nc := testenv.NATS(t)
	db := store.New(testenv.Postgres(t))
	subjects := events.NewSubjects(testenv.Prefix(t))
	received := make(chan struct{}, 1)
	holdIdentify(t, nc, subjects, func() { received <- struct{}{} }) // busy until the test is over

	logs := &testenv.LogBuffer{}
	log, _ := logging.New(logs, "debug")
	m := metrics.New()
	h := ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, time.Minute), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: ratelimit.NewShared(db), Subjects: subjects, Log: log, Metrics: m,
	})
	served := make(chan struct{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(web.Close)
	key := apitest.Key(t, db, "bot", "read")

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, web.URL+"/api/v1/devices?username=jdoe", nil)
	req.Header.Set("X-API-Key", key)
	go func() {
		<-received // the request is with the worker: the client gives up
		cancel()
	}()
	resp, err := web.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered %d, want it cancelled", resp.StatusCode)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context canceled", err)
	}
	<-served

	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"http request"`) && strings.Contains(l, "/api/v1/devices") {
			line = l
		}
	}
	if !strings.Contains(line, `"level":"INFO"`) || !strings.Contains(line, `"status":499`) {
		t.Errorf("access log %q, want INFO with status 499", line)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("a cancellation was logged as an error:\n%s", logs.String())
	}
	if n := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/api/v1/devices", http.MethodGet, "499")); n != 1 {
		t.Errorf("counted %v requests with status 499, want 1", n)
	}
	if n := testutil.ToFloat64(m.HTTPRequests.WithLabelValues("/api/v1/devices", http.MethodGet, "500")); n != 0 {
		t.Errorf("counted %v requests with status 500, want 0", n)
	}
}
