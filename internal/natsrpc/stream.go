package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// Streams: an answer too large for one message (an export of a million rows) goes
// back as a sequence of messages on the caller's inbox, paced by the caller, so that
// no process ever holds it whole:
//
//   - the request carries HeaderStreamControl, a subject the worker listens on for
//     the caller's acknowledgements, heartbeats and cancellation;
//   - the worker answers with a start message (HeaderStream "start", a JSON value),
//     data messages ("data", raw bytes of at most MaxChunk), then an end message
//     ("end", a JSON trailer) or an error (the problem document, with micro's error
//     headers); each carries HeaderSeq, 1, 2, 3..., so a lost message is noticed;
//   - the caller acknowledges each message once it has passed it on (HeaderAck), and
//     the worker has at most StreamWindow messages unacknowledged: a slow reader
//     slows the worker, and through it the worker's own source (the tenant's
//     results file download), instead of filling memory;
//   - both sides say they are alive every progress interval (the worker's progress
//     messages, the caller's heartbeats on the control subject); silence for
//     LostAfter ends the stream on the other side. A caller that gives up sends
//     "cancel", and the worker's context ends at once.
const (
	HeaderStreamControl = "Dexbridge-Stream-Control"
	HeaderStream        = "Dexbridge-Stream"
	HeaderSeq           = "Dexbridge-Seq"
	HeaderAck           = "Dexbridge-Ack"

	streamStart  = "start"
	streamData   = "data"
	streamEnd    = "end"
	streamCancel = "cancel"

	// MaxChunk bounds the payload of a data message (NATS's default maximum is 1 MiB).
	MaxChunk = 64 << 10
	// StreamWindow is how many messages a worker sends ahead of the caller's
	// acknowledgements: at most StreamWindow*MaxChunk bytes in flight per stream.
	StreamWindow = 8
)

// StreamHandler answers one request with a stream: it calls w.Start once with the
// opening value, writes the body to w, and returns the trailer. An error returned
// before Start is the caller's error answer; after Start, the stream breaks off with
// it. ctx ends when the caller cancels or is lost.
type StreamHandler[Req events.Message] func(ctx context.Context, req Req, w *StreamWriter) (trailer any, err error)

// StreamEndpoint registers h on subject in the service's queue group. At most max
// streams run at once on this replica; a request beyond is refused at once as
// rate_limited, since a stream may hold its slot for minutes.
func StreamEndpoint[Req events.Message](s *Server, name, subject, reqType string, max int, h StreamHandler[Req]) error {
	slots := make(chan struct{}, max)
	return s.svc.AddEndpoint(name, micro.HandlerFunc(func(r micro.Request) {
		control := r.Headers().Get(HeaderStreamControl)
		if control == "" || r.Reply() == "" {
			s.respondError(context.Background(), r, problem.New(problem.Invalid, "a stream request needs a reply subject and %s", HeaderStreamControl))
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			s.respondError(context.Background(), r, problem.New(problem.RateLimited,
				"this worker already runs %d streams (exports); try again shortly", max).Retry(5*time.Second))
			return
		}
		s.streams.Add(1)
		go func() {
			defer func() { <-slots; s.streams.Done() }()
			s.stream(r, control, func(ctx context.Context, w *StreamWriter) (any, error) {
				var req Req
				if err := json.Unmarshal(r.Data(), &req); err != nil {
					return nil, problem.Wrap(problem.Invalid, err, "malformed request message")
				}
				if got := req.MessageHeader().Type; got != reqType {
					return nil, problem.New(problem.Invalid, "message type %q, want %q", got, reqType)
				}
				return h(ctx, req, w)
			})
		}()
	}), micro.WithEndpointSubject(subject))
}

// stream runs one stream: it follows the caller's control subject, keeps the caller
// told that it works, runs h and ends the stream with its outcome.
func (s *Server) stream(r micro.Request, control string, h func(context.Context, *StreamWriter) (any, error)) {
	ctx, cancel := context.WithCancel(s.streamCtx)
	defer cancel()
	if id := r.Headers().Get(events.HeaderRequestID); requestid.Valid(id) {
		ctx = requestid.With(ctx, id)
	}
	if id := r.Headers().Get(events.HeaderAPIKeyID); id != "" {
		ctx = WithHeader(ctx, events.HeaderAPIKeyID, id)
	}
	log := s.log.With("subject", r.Subject())
	w := &StreamWriter{nc: s.nc, reply: r.Reply(), ctx: ctx, acks: make(chan struct{}, 1)}
	w.heard.Store(time.Now().UnixNano())
	sub, err := s.nc.Subscribe(control, func(m *nats.Msg) { w.control(m, cancel) })
	if err != nil {
		s.respondError(ctx, r, problem.Wrap(problem.ServiceUnavailable, err, "cannot follow the stream's caller").Retry(time.Second))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	stopProgress := s.progress(r)
	defer stopProgress()
	go w.watch(ctx, cancel, callerLostAfter(r.Headers()))

	start := time.Now()
	trailer, err := func() (trailer any, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return h(ctx, w)
	}()
	switch {
	case err != nil && w.lost.Load():
		log.InfoContext(ctx, "stream ended: the caller is gone", "err", err, "duration_ms", time.Since(start).Milliseconds())
		return
	case err != nil:
		p := problem.From(err)
		if p.Code == problem.Internal {
			log.ErrorContext(ctx, "stream failed", "err", err, "started", w.started, "duration_ms", time.Since(start).Milliseconds())
		} else {
			log.DebugContext(ctx, "stream refused", "code", p.Code, "err", err)
		}
		doc, _ := json.Marshal(p.Doc())
		m := w.message(streamEnd, doc)
		m.Header.Set(micro.ErrorHeader, p.Code.Title())
		m.Header.Set(micro.ErrorCodeHeader, string(p.Code))
		if perr := s.nc.PublishMsg(m); perr != nil {
			log.WarnContext(ctx, "stream error not sent", "err", perr)
		}
		return
	}
	if !w.started {
		if err := w.Start(struct{}{}); err != nil {
			return
		}
	}
	body, err := json.Marshal(trailer)
	if err == nil {
		err = w.send(streamEnd, body)
	}
	if err != nil {
		log.WarnContext(ctx, "stream end not sent", "err", err)
	}
}

// respondError answers r with a problem, as serve does.
func (s *Server) respondError(ctx context.Context, r micro.Request, p *problem.Error) {
	doc, _ := json.Marshal(p.Doc())
	headers := micro.Headers{micro.ErrorHeader: {p.Code.Title()}, micro.ErrorCodeHeader: {string(p.Code)}}
	if err := r.Respond(doc, micro.WithHeaders(headers)); err != nil {
		s.log.WarnContext(ctx, "reply failed", "subject", r.Subject(), "err", err)
	}
}

// callerLostAfter is how long a worker waits without a word from its caller: three
// of the caller's progress intervals, as the caller waits for the worker.
func callerLostAfter(h micro.Headers) time.Duration {
	ms, err := strconv.ParseInt(h.Get(HeaderProgress), 10, 64)
	if err != nil {
		return LostAfter
	}
	return 3 * min(max(time.Duration(ms)*time.Millisecond, minProgress), maxProgress)
}

// StreamWriter sends a stream's messages, within the caller's window.
type StreamWriter struct {
	nc      *nats.Conn
	reply   string
	ctx     context.Context
	seq     uint64 // last sent
	acked   atomic.Uint64
	acks    chan struct{} // a new acknowledgement arrived
	heard   atomic.Int64  // unix nanoseconds of the caller's latest word
	lost    atomic.Bool   // the caller cancelled or went silent
	started bool
}

// Start sends the stream's opening value; call it once, before Write.
func (w *StreamWriter) Start(v any) error {
	if w.started {
		return errors.New("stream already started")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode stream start: %w", err)
	}
	w.started = true
	return w.send(streamStart, b)
}

// Write sends p as data messages of at most MaxChunk bytes, waiting while the
// caller has StreamWindow messages unacknowledged. It fails when the caller is gone.
func (w *StreamWriter) Write(p []byte) (int, error) {
	if !w.started {
		return 0, errors.New("stream written before Start")
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxChunk)]
		if err := w.send(streamData, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (w *StreamWriter) message(kind string, data []byte) *nats.Msg {
	w.seq++
	m := nats.NewMsg(w.reply)
	m.Header.Set(HeaderStream, kind)
	m.Header.Set(HeaderSeq, strconv.FormatUint(w.seq, 10))
	m.Data = data
	return m
}

func (w *StreamWriter) send(kind string, data []byte) error {
	for w.seq-w.acked.Load() >= StreamWindow {
		select {
		case <-w.acks:
		case <-w.ctx.Done():
			return fmt.Errorf("stream: %w", w.ctx.Err())
		}
	}
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if err := w.nc.PublishMsg(w.message(kind, data)); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// control handles a message of the caller: an acknowledgement, a heartbeat or a
// cancellation.
func (w *StreamWriter) control(m *nats.Msg, cancel context.CancelFunc) {
	w.heard.Store(time.Now().UnixNano())
	if m.Header.Get(HeaderStream) == streamCancel {
		w.lost.Store(true)
		cancel()
		return
	}
	if seq, err := strconv.ParseUint(m.Header.Get(HeaderAck), 10, 64); err == nil {
		for {
			cur := w.acked.Load()
			if seq <= cur || w.acked.CompareAndSwap(cur, seq) {
				break
			}
		}
		select {
		case w.acks <- struct{}{}:
		default:
		}
	}
}

// watch cancels ctx when the caller has said nothing for lostAfter.
func (w *StreamWriter) watch(ctx context.Context, cancel context.CancelFunc, lostAfter time.Duration) {
	t := time.NewTicker(max(lostAfter/6, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, w.heard.Load())) > lostAfter {
				w.lost.Store(true)
				cancel()
				return
			}
		}
	}
}

// Stream is a streamed answer being read; Close it when done.
type Stream struct {
	nc        *nats.Conn
	sub       *nats.Subscription
	control   string
	lostAfter time.Duration
	next      uint64 // the sequence number expected next
	toAck     uint64 // the last message handed out, acknowledged on the next read
	trailer   []byte
	done      bool // the end or an error arrived
	stop      func()
}

// Stream sends req on subject to a StreamEndpoint and waits for the stream to start,
// decoding its opening value into start. A worker's refusal comes back as its
// problem, no worker as 503, a worker lost before it started as 503. The stream has
// no deadline of its own: it lasts while ctx and the caller's reading do.
func (c *Client) Stream(ctx context.Context, subject string, req events.Message, start any) (*Stream, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", req.MessageHeader().Type, err)
	}
	if st := c.nc.Status(); st != nats.CONNECTED {
		return nil, problem.Wrap(problem.ServiceUnavailable, fmt.Errorf("%w (%s)", errBusDown, st), "the message bus is unavailable").Retry(time.Second)
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	s := &Stream{nc: c.nc, sub: sub, control: c.nc.NewInbox(), lostAfter: c.lostAfter, next: 1}
	every := progressEvery(c.lostAfter)
	msg := nats.NewMsg(subject)
	msg.Reply, msg.Data = inbox, data
	for k, v := range headersFrom(ctx) {
		msg.Header.Set(k, v)
	}
	if id := requestid.From(ctx); id != "" {
		msg.Header.Set(events.HeaderRequestID, id)
	}
	msg.Header.Set(HeaderProgress, strconv.FormatInt(every.Milliseconds(), 10))
	msg.Header.Set(HeaderStreamControl, s.control)
	if err := c.nc.PublishMsg(msg); err != nil {
		_ = sub.Unsubscribe()
		return nil, problem.Wrap(problem.ServiceUnavailable, err, "the message bus is unavailable").Retry(time.Second)
	}
	s.stop = s.heartbeat(every)
	m, err := s.read(ctx)
	if err == nil && m.Header.Get(HeaderStream) != streamStart {
		err = fmt.Errorf("stream on %s: got a %q message first, want start", subject, m.Header.Get(HeaderStream))
	}
	if err == nil {
		if err = json.Unmarshal(m.Data, start); err != nil {
			err = fmt.Errorf("decode stream start on %s: %w", subject, err)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Next returns the next chunk of the stream's body, having acknowledged the one
// before; io.EOF at the end (Trailer then holds the end's value). A worker's error
// mid-stream is its problem; a lost message or worker is an error too.
func (s *Stream) Next(ctx context.Context) ([]byte, error) {
	if s.done {
		return nil, io.EOF
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	switch m.Header.Get(HeaderStream) {
	case streamData:
		return m.Data, nil
	case streamEnd:
		s.trailer = m.Data
		return nil, io.EOF
	}
	return nil, fmt.Errorf("stream: unexpected %q message", m.Header.Get(HeaderStream))
}

// Trailer decodes the end's value into v, after Next returned io.EOF.
func (s *Stream) Trailer(v any) error {
	if s.trailer == nil {
		return errors.New("stream not ended")
	}
	return json.Unmarshal(s.trailer, v)
}

// Close ends the stream: a worker still sending is told to stop.
func (s *Stream) Close() {
	if !s.done {
		s.done = true
		m := nats.NewMsg(s.control)
		m.Header.Set(HeaderStream, streamCancel)
		_ = s.nc.PublishMsg(m)
	}
	s.stop()
	_ = s.sub.Unsubscribe()
}

// read acknowledges the last message handed out, then returns the next message of
// the stream, skipping progress; a worker's error is returned as its problem.
func (s *Stream) read(ctx context.Context) (*nats.Msg, error) {
	if s.toAck > 0 {
		m := nats.NewMsg(s.control)
		m.Header.Set(HeaderAck, strconv.FormatUint(s.toAck, 10))
		if err := s.nc.PublishMsg(m); err != nil {
			return nil, fmt.Errorf("stream: acknowledge: %w", err)
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, s.lostAfter)
		m, err := s.sub.NextMsgWithContext(wctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, nats.ErrNoResponders):
			s.done = true
			return nil, problem.Wrap(problem.ServiceUnavailable, err, "no worker is available for this request").Retry(time.Second)
		case errors.Is(err, context.DeadlineExceeded):
			s.done = true
			return nil, problem.Wrap(problem.ServiceUnavailable, errLost, "the worker streaming this answer stopped answering").Retry(time.Second)
		case err != nil:
			return nil, fmt.Errorf("stream: %w", err)
		}
		if m.Header.Get(HeaderStatus) == StatusWorking {
			continue
		}
		if perr := replyProblem(m); perr != nil {
			s.done = true
			return nil, perr
		}
		seq, _ := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
		if seq != s.next {
			s.done = true
			return nil, fmt.Errorf("stream: message %d arrived, want %d: the stream lost a message", seq, s.next)
		}
		s.next++
		s.toAck = seq
		if m.Header.Get(HeaderStream) == streamEnd {
			s.done = true
		}
		return m, nil
	}
}

// heartbeat tells the worker every interval that the caller still reads, until the
// returned stop is called.
func (s *Stream) heartbeat(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m := nats.NewMsg(s.control)
				m.Header.Set(HeaderStatus, StatusWorking)
				_ = s.nc.PublishMsg(m)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// replyProblem is the problem a worker answered with, or nil for an answer.
func replyProblem(m *nats.Msg) error {
	code := m.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	var doc problem.Document
	if json.Unmarshal(m.Data, &doc) != nil || doc.Code == "" {
		doc = problem.Document{Code: problem.Code(code), Detail: m.Header.Get(micro.ErrorHeader)}
	}
	return workerProblem{p: problem.FromDoc(doc)}
}
