package ingress

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/testenv"
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
	ln := newLimitListener(raw, 1, m, nil)
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

// gatedListener accepts a connection only when told to, so that a test's request is
// in the socket before the listener sees the connection.
type gatedListener struct {
	net.Listener
	gate chan struct{}
}

func (g gatedListener) Accept() (net.Conn, error) {
	<-g.gate
	return g.Listener.Accept()
}

// TestRefusedAtAcceptWhileAdmissionRefuses: while admission control refuses, a new
// connection's API request is answered 503 with Retry-After by the listener, and a
// probe is still served.
func TestRefusedAtAcceptWhileAdmissionRefuses(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	gate := make(chan struct{})
	var refusing atomic.Bool
	refusing.Store(true)
	ln := newLimitListener(gatedListener{raw, gate}, 8, m, refusing.Load)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	t.Cleanup(func() { close(gate) })

	ask := func(path string) *http.Response {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: dexbridge\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		gate <- struct{}{}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", path, err)
		}
		return resp
	}
	resp := ask("/api/v1/devices?username=jdoe")
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Code string `json:"code"`
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		json.Unmarshal(body, &p) != nil || p.Code != "service_unavailable" {
		t.Errorf("while admission refuses: got %d, Retry-After %q, %s; want a 503 problem with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Counted once the answer is written, which the client may read first.
	testenv.Eventually(t, "the refusal at accept counted", func() bool {
		return testutil.ToFloat64(m.AdmissionRefusals.WithLabelValues("accept")) == 1
	})
	if resp := ask("/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("a probe while admission refuses: got %d, want it served", resp.StatusCode)
	}
	refusing.Store(false)
	if resp := ask("/api/v1/devices?username=jdoe"); resp.StatusCode != http.StatusOK {
		t.Errorf("once admission admits again: got %d, want it served", resp.StatusCode)
	}
}
