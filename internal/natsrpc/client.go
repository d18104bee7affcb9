package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// Client calls worker endpoints.
//
// A worker that takes a request says every ProgressEvery that it is still working on
// it (HeaderProgress asks for this, HeaderStatus marks the messages), so the caller
// tells a slow worker from a lost one without guessing how long the work may take: a
// request answered by nothing, progress included, for LostAfter went to a worker that
// died (SIGKILL, a crash, a cut connection) or was lost with a NATS server. An
// Idempotent call is then sent once more, to another replica of the queue group; any
// other call fails with 503, since its work may have been done.
type Client struct {
	nc        *nats.Conn
	timeout   time.Duration
	lostAfter time.Duration
	metrics   *metrics.Metrics
	mux       *replyMux
	slots     chan struct{} // calls waiting at once, when bounded (WithMaxInFlight)
}

// WithMetrics records each call's latency and outcome in m.
func (c *Client) WithMetrics(m *metrics.Metrics) *Client {
	cc := *c
	cc.metrics = m
	return &cc
}

// WithLostAfter returns a client that presumes a request lost after d without an
// answer or a progress message (default LostAfter); tests shorten it.
func (c *Client) WithLostAfter(d time.Duration) *Client {
	cc := *c
	cc.lostAfter = d
	return &cc
}

// WithMaxInFlight returns a client that has at most n calls waiting at once and
// answers any call beyond at once with 503: an ingress under more load than its
// workers can take sheds it, instead of queueing requests (and their memory) until
// every one of them times out.
func (c *Client) WithMaxInFlight(n int) *Client {
	cc := *c
	cc.slots = make(chan struct{}, n)
	return &cc
}

// NewClient returns a client whose calls wait at most timeout when the caller's
// context has no earlier deadline.
func NewClient(nc *nats.Conn, timeout time.Duration) *Client {
	return &Client{nc: nc, timeout: timeout, lostAfter: LostAfter, mux: &replyMux{nc: nc}}
}

const (
	// HeaderProgress asks the worker for a progress message every so many
	// milliseconds while it works on the request.
	HeaderProgress = "Dexbridge-Progress"
	// HeaderStatus marks a progress message (StatusWorking); a reply has none.
	HeaderStatus  = "Dexbridge-Status"
	StatusWorking = "working"

	// LostAfter is how long a request may go without an answer or a progress
	// message before the caller presumes its worker gone: three progress intervals.
	LostAfter = 3 * time.Second
)

// progressEvery is the progress interval asked of workers for a lost-after bound:
// a third of it, so that two progress messages may be late before a live worker
// counts as lost.
func progressEvery(lostAfter time.Duration) time.Duration {
	return max(lostAfter/3, 10*time.Millisecond)
}

// retryNoResponders is how long Call waits before its one retry when no worker
// listens: long enough for a restarting replica, short enough for a chatbot.
const retryNoResponders = 200 * time.Millisecond

// CallOption adjusts one Call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotent bool
}

// Idempotent marks a call that is safe to send twice (a read, or a write made safe
// by an idempotency key): when its worker is lost, Call sends it once more.
func Idempotent(o *callOptions) { o.idempotent = true }

// IdempotentIf is Idempotent when ok.
func IdempotentIf(ok bool) CallOption {
	return func(o *callOptions) { o.idempotent = o.idempotent || ok }
}

// errLost says no answer and no progress came for lostAfter.
var errLost = errors.New("no answer and no progress from the worker")

// Call sends req on subject and decodes the reply into resp. A worker's error comes
// back as the *problem.Error it returned; no worker at all is 503, and so is a
// worker lost with the request (after one more try when the call is Idempotent) or a
// NATS connection that is down; no answer in time is 504. Call never waits past
// ctx's deadline, or the client's timeout when ctx has none. A resp of type
// *json.RawMessage receives the reply's bytes as they came.
func (c *Client) Call(ctx context.Context, subject string, req events.Message, resp any, opts ...CallOption) (err error) {
	if c.metrics != nil {
		defer func(start time.Time) {
			outcome := "ok"
			if err != nil {
				outcome = string(problem.CodeOf(err))
			}
			c.metrics.NATSRequestDuration.WithLabelValues(subject, outcome).Observe(time.Since(start).Seconds())
		}(time.Now())
	}
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		default:
			return problem.New(problem.ServiceUnavailable,
				"dexbridge is at capacity (%d requests waiting on its workers); try again shortly", cap(c.slots)).Retry(time.Second)
		}
	}
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s: %w", req.MessageHeader().Type, err)
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	msg := nats.NewMsg(subject)
	msg.Data = data
	for k, v := range headersFrom(ctx) {
		msg.Header.Set(k, v)
	}
	if id := requestid.From(ctx); id != "" {
		msg.Header.Set(events.HeaderRequestID, id)
	}
	if d, ok := ctx.Deadline(); ok {
		msg.Header.Set(HeaderDeadline, strconv.FormatInt(d.UnixMilli(), 10))
	}
	msg.Header.Set(HeaderProgress, strconv.FormatInt(progressEvery(c.lostAfter).Milliseconds(), 10))

	var reply *nats.Msg
	for attempt := 1; ; attempt++ {
		reply, err = c.request(ctx, msg)
		if attempt > 1 {
			break
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// Nobody got it: safe to try again whatever the call does.
			select {
			case <-time.After(retryNoResponders):
				continue
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if errors.Is(err, errLost) && o.idempotent {
			continue
		}
		break
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return problem.Wrap(problem.ServiceUnavailable, err, "no worker is available for this request").Retry(time.Second)
	case errors.Is(err, errLost) && o.idempotent:
		return problem.Wrap(problem.ServiceUnavailable, err, "the workers stopped answering this request").Retry(time.Second)
	case errors.Is(err, errLost):
		return problem.Wrap(problem.ServiceUnavailable, err,
			"the worker handling this request stopped answering: it may or may not have been carried out").Retry(time.Second)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return problem.Wrap(problem.Timeout, err, "no answer from the workers in time")
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, errBusDown), errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrReconnectBufExceeded):
		return problem.Wrap(problem.ServiceUnavailable, err, "the message bus is unavailable").Retry(time.Second)
	case err != nil:
		return fmt.Errorf("request %s: %w", subject, err)
	}
	if err := replyProblem(reply); err != nil {
		return err
	}
	if raw, ok := resp.(*json.RawMessage); ok {
		// The caller takes the reply as the worker encoded it (no decoding here, no
		// validation either: it comes from a worker, encoded by encoding/json).
		*raw = reply.Data
		return nil
	}
	if err := json.Unmarshal(reply.Data, resp); err != nil {
		return fmt.Errorf("decode reply on %s: %w", subject, err)
	}
	return nil
}

// errBusDown says the connection to NATS is not up: the request is refused at once
// rather than buffered until the deadline.
var errBusDown = errors.New("not connected to nats")

// request makes one attempt: it publishes msg with a fresh reply subject and waits
// for the reply, ctx's end, or lostAfter of silence.
func (c *Client) request(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	if s := c.nc.Status(); s != nats.CONNECTED && s != nats.DRAINING_SUBS {
		return nil, fmt.Errorf("%w (%s)", errBusDown, s)
	}
	w, err := c.mux.wait()
	if err != nil {
		return nil, err
	}
	defer c.mux.done(w)
	m := *msg
	m.Reply = w.subject
	if err := c.nc.PublishMsg(&m); err != nil {
		return nil, err
	}
	every := progressEvery(c.lostAfter)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case r := <-w.reply:
			if len(r.Data) == 0 && r.Header.Get("Status") == "503" {
				return nil, nats.ErrNoResponders
			}
			return r, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if time.Since(w.heard()) > c.lostAfter {
				return nil, errLost
			}
		}
	}
}

func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// replyMux receives the replies and progress messages of every call of a client on
// one wildcard subscription (as nats.go's own request mux does, which drops all but
// the first message of a request), and hands each to its waiting call by the last
// token of its subject.
type replyMux struct {
	nc     *nats.Conn
	once   sync.Once
	err    error
	prefix string
	mu     sync.Mutex
	calls  map[string]*waiter
}

// waiter is one attempt waiting for its reply.
type waiter struct {
	token   string
	subject string
	reply   chan *nats.Msg // the first reply
	last    atomic.Int64   // unix nanoseconds of the send or of the latest progress
}

func (w *waiter) heard() time.Time { return time.Unix(0, w.last.Load()) }

func (x *replyMux) wait() (*waiter, error) {
	x.once.Do(func() {
		x.prefix = x.nc.NewInbox() + "."
		x.calls = map[string]*waiter{}
		_, x.err = x.nc.Subscribe(x.prefix+"*", x.dispatch)
	})
	if x.err != nil {
		return nil, fmt.Errorf("subscribe to replies: %w", x.err)
	}
	token := nats.NewInbox()[len(nats.InboxPrefix):]
	w := &waiter{token: token, subject: x.prefix + token, reply: make(chan *nats.Msg, 1)}
	w.last.Store(time.Now().UnixNano())
	x.mu.Lock()
	x.calls[token] = w
	x.mu.Unlock()
	return w, nil
}

func (x *replyMux) done(w *waiter) {
	x.mu.Lock()
	delete(x.calls, w.token)
	x.mu.Unlock()
}

func (x *replyMux) dispatch(m *nats.Msg) {
	token := strings.TrimPrefix(m.Subject, x.prefix)
	x.mu.Lock()
	w := x.calls[token]
	x.mu.Unlock()
	if w == nil {
		return // a late reply or progress of a call that has returned
	}
	if m.Header.Get(HeaderStatus) == StatusWorking {
		w.last.Store(time.Now().UnixNano())
		return
	}
	select {
	case w.reply <- m:
	default: // a second reply: the first one counts
	}
}

// workerProblem is a problem a worker answered with: the worker logged it where it
// happened, so the caller need not log it again.
type workerProblem struct{ p *problem.Error }

func (w workerProblem) Error() string { return w.p.Error() }
func (w workerProblem) Unwrap() error { return w.p }

// FromWorker reports whether err is a problem a worker answered a call with.
func FromWorker(err error) bool {
	var w workerProblem
	return errors.As(err, &w)
}
