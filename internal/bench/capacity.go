package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// phase is the outcome of one load phase: every request's status (0 when it got no
// answer, -1 when the bounded client could not send it in time), latencies of the
// 200s (from the due time, open loop; from the send, closed loop) and of the 503s, and
// the load generator's own CPU.
type phase struct {
	sent, ok, shed, dropped, other int
	okLat, shedLat                 []time.Duration // sorted
	elapsed                        time.Duration
	cpu                            time.Duration // this process's user+system CPU during the phase
	serverCPU                      time.Duration // the server process's, when measured (procCPU)
}

func (p *phase) record(code int, lat time.Duration) {
	switch code {
	case http.StatusOK:
		p.ok++
		p.okLat = append(p.okLat, lat)
	case http.StatusServiceUnavailable:
		p.shed++
		p.shedLat = append(p.shedLat, lat)
	case -1:
		p.dropped++
	default:
		p.other++
	}
}

func (p *phase) finish() {
	slices.Sort(p.okLat)
	slices.Sort(p.shedLat)
}

// goodput is the 200s per second.
func (p phase) goodput() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.ok) / p.elapsed.Seconds()
}

// cpuShare is the load generator's CPU as a share of the machine's cores.
func (p phase) cpuShare(cores int) float64 {
	if p.elapsed <= 0 || cores <= 0 {
		return 0
	}
	return p.cpu.Seconds() / p.elapsed.Seconds() / float64(cores)
}

func pct(lat []time.Duration, p float64) time.Duration {
	return loadResult{ok: lat}.percentile(p)
}

// serverCPUPer is the server's CPU per 200 answer, or per answer of any status.
func (p phase) serverCPUPer() (per200, perAnswer time.Duration) {
	if p.ok > 0 {
		per200 = p.serverCPU / time.Duration(p.ok)
	}
	if n := p.ok + p.shed + p.other; n > 0 {
		perAnswer = p.serverCPU / time.Duration(n)
	}
	return per200, perAnswer
}

// closedPhase runs conc workers, each sending its next request when the previous one
// is answered, for d.
func closedPhase(ctx context.Context, conc int, d time.Duration, do func(ctx context.Context, i int) (int, error)) phase {
	var (
		mu  sync.Mutex
		p   phase
		seq atomic.Int64
		wg  sync.WaitGroup
	)
	cpu0, start := cpuTime(), time.Now()
	end := start.Add(d)
	for range conc {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				t := time.Now()
				code, err := do(ctx, int(seq.Add(1)))
				if err != nil {
					code = 0
				}
				lat := time.Since(t)
				mu.Lock()
				p.sent++
				p.record(code, lat)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.elapsed, p.cpu = time.Since(start), cpuTime()-cpu0
	p.finish()
	return p
}

// boundedOpenLoop offers rate requests per second for d, each at its due time whatever
// the previous ones are doing, latency counted from the due time (no coordinated
// omission). The generator is bounded: at most maxInFlight requests at once; one due
// while all are busy is counted as dropped, not queued, so the client's memory and
// goroutines stay bounded whatever the server does.
func boundedOpenLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int, do func(ctx context.Context, i int) (int, error)) phase {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	slots := make(chan struct{}, maxInFlight)
	var (
		mu   sync.Mutex
		p    phase
		wg   sync.WaitGroup
		last time.Time
	)
	cpu0 := cpuTime()
	start := time.Now().Add(20 * time.Millisecond)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		p.sent++
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			p.record(-1, 0)
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			code, err := do(ctx, i)
			if err != nil {
				code = 0
			}
			now := time.Now()
			mu.Lock()
			p.record(code, now.Sub(due))
			if now.After(last) {
				last = now
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	p.elapsed, p.cpu = max(last.Sub(start), d), cpuTime()-cpu0
	p.finish()
	return p
}

// churnRequest identifies the i-th user (round robin) through dexbridge at addr over
// a connection of its own, closed after the answer, as a storm of chatbot replicas
// without connection reuse would. It writes the request and reads the answer on the
// bare connection: net/http's client, with keep-alives off, spent about 140 µs of
// the load generator's CPU per request where this spends 100 µs, CPU the server it
// measures loses on a 2-core machine.
func churnRequest(addr, key string, users []string) func(ctx context.Context, i int) (int, error) {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, i int) (int, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		deadline, _ := ctx.Deadline()
		_ = conn.SetDeadline(deadline)
		code, _, err := roundTrip(conn, bufio.NewReader(conn), identifyHTTP(addr, key, users[i%len(users)], true))
		return code, err
	}
}

// keptConns is a pool of kept-alive connections to dexbridge at addr, on which
// identifications are written and read as churnRequest does. In an open loop
// net/http's Transport (two goroutines a connection and a hand-over between them a
// request) took 53 to 62 µs of the load generator's CPU per request, this 42 to 46:
// CPU the server it measures loses on a 2-core machine.
type keptConns struct {
	addr, key string
	users     []string
	idle      chan *keptConn
	dials     atomic.Int64 // connections opened, the pool's first included
}

type keptConn struct {
	net.Conn
	r *bufio.Reader
}

// newKeptConns opens n connections to addr; more are opened when all are busy, and
// up to cap(idle) kept.
func newKeptConns(ctx context.Context, addr, key string, users []string, n int) (*keptConns, error) {
	k := &keptConns{addr: addr, key: key, users: users, idle: make(chan *keptConn, openLoopBound)}
	for range n {
		c, err := k.dial(ctx)
		if err != nil {
			k.close()
			return nil, err
		}
		k.idle <- c
	}
	return k, nil
}

func (k *keptConns) dial(ctx context.Context) (*keptConn, error) {
	k.dials.Add(1)
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", k.addr)
	if err != nil {
		return nil, err
	}
	return &keptConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// request identifies the i-th user (round robin) on an idle connection.
func (k *keptConns) request(ctx context.Context, i int) (int, error) {
	var c *keptConn
	select {
	case c = <-k.idle:
	default:
		var err error
		if c, err = k.dial(ctx); err != nil {
			return 0, err
		}
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	code, closed, err := roundTrip(c, c.r, identifyHTTP(k.addr, k.key, k.users[i%len(k.users)], false))
	if err != nil || closed {
		c.Close()
		return code, err
	}
	select {
	case k.idle <- c:
	default:
		c.Close()
	}
	return code, nil
}

// close closes the idle connections.
func (k *keptConns) close() {
	for {
		select {
		case c := <-k.idle:
			c.Close()
		default:
			return
		}
	}
}

// identifyHTTP is the HTTP/1.1 request identifying user.
func identifyHTTP(addr, key, user string, closeConn bool) string {
	req := "GET /api/v1/devices?username=" + url.QueryEscape(user) + " HTTP/1.1\r\nHost: " + addr + "\r\nX-API-Key: " + key + "\r\n"
	if closeConn {
		req += "Connection: close\r\n"
	}
	return req + "\r\n"
}

// roundTrip writes req on w and reads the whole answer from r: its status, and
// whether the server closes the connection after it.
func roundTrip(w io.Writer, r *bufio.Reader, req string) (code int, closed bool, err error) {
	if _, err := io.WriteString(w, req); err != nil {
		return 0, true, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, true, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, true, err
	}
	return resp.StatusCode, resp.Close, nil
}

// ceilingHandler answers identification requests on a NATS subject with nothing but
// the cache's own PostgreSQL query (store.DevicesOfUser, pgx): no HTTP, no
// authentication, no limiter, no JSON of a reply envelope. Its closed-loop rate is
// the most the parts can give on this machine.
func ceilingHandler(nc *nats.Conn, subject string, db *store.DB) (*nats.Subscription, error) {
	return nc.QueueSubscribe(subject, "ceiling", func(m *nats.Msg) {
		go func() {
			var matches []store.UserMatch
			for _, u := range events.UserMatches(events.KeyUsername, string(m.Data)) {
				k := store.ByUserName
				if u.Key == events.KeyUPN {
					k = store.ByUPN
				}
				matches = append(matches, store.UserMatch{Key: k, Value: u.Value, MatchedBy: u.MatchedBy})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			found, err := db.DevicesOfUser(ctx, matches, "", 50)
			reply := "0"
			if err == nil && len(found) > 0 {
				reply = found[0].CollectorUID
			}
			_ = m.Respond([]byte(reply))
		}()
	})
}

// ceilingRequest asks the ceiling handler about the i-th user: 200 for a device found.
func ceilingRequest(nc *nats.Conn, subject string, users []string) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		msg, err := nc.RequestWithContext(ctx, subject, []byte(users[i%len(users)]))
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return http.StatusGatewayTimeout, nil
		case err != nil:
			return 0, err
		case string(msg.Data) == "0":
			return http.StatusNotFound, nil
		}
		return http.StatusOK, nil
	}
}

// wrkRate parses wrk's "Requests/sec:" line.
func wrkRate(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Requests/sec:" {
			return f[1]
		}
	}
	return ""
}
