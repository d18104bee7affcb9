package ingress

import (
	"bytes"
	"container/list"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// shedResponse is what a connection beyond the bound gets: a complete HTTP/1.1 503
// problem with Retry-After, written by the listener without a goroutine of the HTTP
// server, a request parser or a handler. A client is told when to come back rather
// than left in a queue.
var shedResponse = func() []byte {
	d := problem.New(problem.ServiceUnavailable, "the ingress is serving as many connections as it may: retry in a second").Doc()
	d.RetryAfter = 1
	body, _ := json.Marshal(d)
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"+
		"Content-Type: %s\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nContent-Length: %d\r\n\r\n%s",
		problem.ContentType, len(body), body)
}()

// shedTimeout bounds the time spent on one shed connection: reading its request
// (so that closing it does not reset the answer away) and writing the answer.
const shedTimeout = 250 * time.Millisecond

// limitListener serves at most n connections at once. At the bound, the connection
// idle the longest between two requests (keep-alive) is closed to make room, as a
// client may reopen it at any time (with an idempotent request it retries on its own);
// otherwise the new connection is accepted, answered 503 with Retry-After and closed
// without a goroutine of the HTTP server: under a storm of new connections the
// process's memory and goroutines stay bounded and the connections it serves keep
// their share of the CPU. Kernel backlog is not a queue a client waits in for long.
// Without the first rule, the connections a burst left open would hold every slot
// for the server's idle timeout, and an idle process would refuse newcomers.
//
// While admission control refuses (every slot taken, its queue full or standing), a
// new connection whose request has arrived is refused the same way, before the
// request is parsed, unless it asks for a path admission control lets through (a
// probe, the metrics): that request would be refused anyway, and refusing it here
// costs a fraction of what it costs once the HTTP server has it. Connections already
// served keep going to admission control, which decides their next requests.
type limitListener struct {
	net.Listener
	slots    chan struct{} // a token per connection served
	shedding chan struct{} // a token per shed connection being answered by a goroutine
	metrics  *metrics.Metrics
	// refusing, when set, says admission control is refusing (admission.Controller).
	refusing func() bool

	mu   sync.Mutex
	idle list.List // of *limitedConn waiting for their next request, the longest first
}

func newLimitListener(l net.Listener, n int, m *metrics.Metrics, refusing func() bool) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), shedding: make(chan struct{}, max(n/4, 1)), metrics: m,
		refusing: refusing}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.refusing != nil && l.refusing() && shedNow(c, unadmittedPath) {
			l.metrics.AdmissionRefused("accept")
			continue
		}
		if l.take() || l.closeIdle() && l.take() {
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		}
		l.metrics.RateLimited("connections")
		l.shed(c)
	}
}

// take takes a slot if one is free.
func (l *limitListener) take() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// closeIdle closes the connection idle the longest, which frees its slot, and
// reports whether there was one.
func (l *limitListener) closeIdle() bool {
	l.mu.Lock()
	e := l.idle.Front()
	if e == nil {
		l.mu.Unlock()
		return false
	}
	c := e.Value.(*limitedConn)
	l.idle.Remove(e)
	c.idle = nil
	l.mu.Unlock()
	_ = c.Close()
	l.metrics.IdleConnectionClosed()
	return true
}

// ConnState is the HTTP server's hook (http.Server.ConnState): it keeps the list of
// the connections idle between two requests.
func (l *limitListener) ConnState(nc net.Conn, state http.ConnState) {
	if t, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = t.NetConn()
	}
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case state == http.StateIdle && c.idle == nil:
		c.idle = l.idle.PushBack(c)
	case state != http.StateIdle && c.idle != nil:
		l.idle.Remove(c.idle)
		c.idle = nil
	}
}

// shed answers c 503 and closes it: at once when its request's head has arrived
// (the usual case: a client sends it right after the handshake), otherwise by
// a goroutine that waits for it a little, at most n/4 at once; beyond those, it is
// answered without waiting, and a client still sending may then see the connection
// reset instead.
func (l *limitListener) shed(c net.Conn) {
	if shedNow(c, nil) {
		return
	}
	select {
	case l.shedding <- struct{}{}:
		go func() {
			defer func() { <-l.shedding }()
			shed(c)
		}()
	default:
		_, _ = c.Write(shedResponse)
		_ = c.Close()
	}
}

// shed reads the request's head (up to 4 KiB), answers 503 and closes; a connection
// that sent nothing is closed without an answer, which its client would take for an
// answer to its next request (a client may open a connection before it has one).
func shed(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(shedTimeout))
	buf := make([]byte, 4096)
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil || bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
	}
	if n > 0 {
		_, _ = c.Write(shedResponse)
	}
}

// limitedConn gives its slot back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
	idle    *list.Element // in limitListener.idle while idle; guarded by its mu
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// requestPath is the path of a request's head (its request line's target without
// the query), "" when the line does not have one.
func requestPath(head []byte) string {
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	_, target, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return ""
	}
	target, _, _ = bytes.Cut(target, []byte(" "))
	target, _, _ = bytes.Cut(target, []byte("?"))
	return string(target)
}

// unadmittedPath says admission control lets a path through (admission.go).
func unadmittedPath(path string) bool { return unadmitted[path] }
