package ingress

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dexbridge/dexbridge/internal/metrics"
)

// TestConnectionsBeyondTheBoundAreShed: with one connection allowed, a second
// client is answered 503 with Retry-After and a problem document at once while the
// first is being served, and served once the first connection is closed.
func TestConnectionsBeyondTheBoundAreShed(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	ln := newLimitListener(raw, 1, m)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + raw.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	slow := make(chan error, 1)
	go func() {
		resp, err := client.Get(url + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	<-entered

	resp, err := client.Get(url + "/fast")
	if err != nil {
		t.Fatalf("a shed connection got no answer: %v", err)
	}
	var p struct {
		Code   string `json:"code"`
		Status int    `json:"status"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil ||
		p.Code != "service_unavailable" || p.Status != 503 {
		t.Errorf("beyond the bound: got %d, Retry-After %q, %s; want a 503 service_unavailable problem with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := testutil.ToFloat64(m.RateLimitRejections.WithLabelValues("connections")); n != 1 {
		t.Errorf("counted %v shed connections, want 1", n)
	}

	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the connection within the bound: %v", err)
	}
	// The slot comes back when the server has closed the first connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/fast", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("no connection served after the first closed: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
	}
}
