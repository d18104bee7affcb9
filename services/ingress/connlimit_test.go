package ingress

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
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

// TestIdleConnectionsMakeRoom: at the bound, with every connection idle between two
// requests (what a burst of keep-alive clients leaves behind), a new client is served,
// not refused, and the connection closed for it is the one idle the longest: the
// other is reused.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	ln := newLimitListener(raw, 2, m, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }),
		ConnState: ln.ConnState}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + raw.Addr().String() + "/"

	get := func(who string, c *http.Client) (reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d, want 200", who, resp.StatusCode)
		}
		return reused
	}
	idle := func(n int) {
		t.Helper()
		testenv.Eventually(t, fmt.Sprintf("%d connections idle", n), func() bool {
			ln.mu.Lock()
			defer ln.mu.Unlock()
			return ln.idle.Len() == n
		})
	}
	client := func() *http.Client { return &http.Client{Transport: &http.Transport{}} } // a connection of its own
	first, second, third := client(), client(), client()
	get("first", first)
	idle(1)
	get("second", second)
	idle(2)
	get("a third client with both slots held by idle connections", third)
	if n := testutil.ToFloat64(m.IdleConnsClosed); n != 1 {
		t.Errorf("counted %v idle connections closed, want 1", n)
	}
	if !get("second, again", second) {
		t.Error("the second connection was closed; want the one idle the longest, the first, closed")
	}
}

// TestShedConnectionThatSentNothing: beyond the bound, a connection that sends no
// request is closed without an answer, which its client would otherwise read as the
// answer to the request it sends next.
func TestShedConnectionThatSentNothing(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, 1, metrics.New(), nil)
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), ConnState: ln.ConnState}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	t.Cleanup(func() { close(release) })
	go func() {
		if resp, err := http.Get("http://" + raw.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered // the one slot is busy

	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) > 0 {
		t.Errorf("a shed connection that sent nothing read %q, %v; want it closed without an answer", got, err)
	}
}
