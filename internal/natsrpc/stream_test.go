package natsrpc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

type streamStart struct {
	Topic string `json:"topic"`
}

type streamEnd struct {
	Bytes int `json:"bytes"`
}

// streamEnv is a stream endpoint on its own connection and a caller on another, so
// a test can cut either side.
type streamEnv struct {
	worker, caller *nats.Conn
	subject        string
	client         *natsrpc.Client
	written        atomic.Int64 // bytes the handler has written
	read           atomic.Int64 // bytes the test has read
	maxAhead       atomic.Int64 // the most the handler was ever ahead of the reader
	ended          chan error   // the handler's outcome
}

const (
	streamBody  = 3 << 20              // bytes of a stream
	streamWrite = natsrpc.MaxChunk / 2 // bytes of each of the handler's writes
)

func newStreamEnv(t *testing.T, max int) *streamEnv {
	t.Helper()
	nc := testenv.NATS(t)
	connect := func() *nats.Conn {
		c, err := nats.Connect(nc.ConnectedUrl())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	e := &streamEnv{worker: connect(), caller: connect(), subject: testenv.Prefix(t) + ".req.nql.export", ended: make(chan error, 16)}
	srv, err := natsrpc.NewServer(e.worker, "streamer", "1.0.0", "test", 4, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	err = natsrpc.StreamEndpoint(srv, "export", e.subject, events.TypeTopicsGetRequest, max,
		func(ctx context.Context, req events.TopicsGetRequest, w *natsrpc.StreamWriter) (any, error) {
			switch req.Topic {
			case "refuse":
				return nil, problem.InvalidField("format", "no such format")
			case "hold":
				<-ctx.Done() // until the caller goes
				e.ended <- ctx.Err()
				return nil, ctx.Err()
			}
			if err := w.Start(streamStart{Topic: req.Topic}); err != nil {
				return nil, err
			}
			chunk := bytes.Repeat([]byte{'x'}, streamWrite)
			for n := 0; n < streamBody; n += len(chunk) {
				if req.Topic == "fail" && n >= streamBody/2 {
					return nil, problem.New(problem.UpstreamUnavailable, "the tenant broke off")
				}
				if _, err := w.Write(chunk); err != nil {
					e.ended <- err
					return nil, err
				}
				ahead := e.written.Add(int64(len(chunk))) - e.read.Load()
				for cur := e.maxAhead.Load(); ahead > cur && !e.maxAhead.CompareAndSwap(cur, ahead); cur = e.maxAhead.Load() {
				}
			}
			e.ended <- nil
			return streamEnd{Bytes: streamBody}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.worker.Flush(); err != nil { // the endpoint is subscribed before the caller asks
		t.Fatal(err)
	}
	e.client = natsrpc.NewClient(e.caller, 5*time.Second).WithLostAfter(300 * time.Millisecond)
	return e
}

func topicReq(topic string) events.TopicsGetRequest {
	return events.TopicsGetRequest{Header: events.NewHeader(events.TypeTopicsGetRequest), Topic: topic}
}

// A stream carries its start, every byte in order and its trailer.
func TestStreamDeliversEverything(t *testing.T) {
	e := newStreamEnv(t, 2)
	ctx := context.Background()
	var start streamStart
	s, err := e.client.Stream(ctx, e.subject, topicReq("all"), &start)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, chunks := 0, 0
	for {
		b, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if len(b) > natsrpc.MaxChunk {
			t.Fatalf("chunk of %d bytes, more than %d", len(b), natsrpc.MaxChunk)
		}
		n += len(b)
		chunks++
	}
	var end streamEnd
	if err := s.Trailer(&end); err != nil || start.Topic != "all" || n != streamBody || end.Bytes != streamBody {
		t.Errorf("got start %+v, %d bytes in %d chunks, end %+v (%v); want %d bytes", start, n, chunks, end, err, streamBody)
	}
}

// A reader that takes its time holds the worker at the window: the worker fills
// it, and never gets more than StreamWindow messages ahead of what the reader has
// taken (the chunk Next just returned counts once the reader has added it up).
func TestStreamIsPacedByTheReader(t *testing.T) {
	e := newStreamEnv(t, 2)
	ctx := context.Background()
	var start streamStart
	s, err := e.client.Stream(ctx, e.subject, topicReq("paced"), &start)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	window := int64((natsrpc.StreamWindow - 1) * streamWrite)
	for range 10 {
		testenv.Eventually(t, "the worker to fill the window", func() bool { return e.written.Load()-e.read.Load() >= window })
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.read.Add(int64(len(b)))
	}
	if got, most := e.maxAhead.Load(), window+streamWrite; got > most {
		t.Errorf("the worker was up to %d bytes ahead of the reader, want at most %d", got, most)
	}
}

// Closing a stream mid-way ends the worker's context at once.
func TestStreamCloseCancelsTheWorker(t *testing.T) {
	e := newStreamEnv(t, 2)
	ctx := context.Background()
	var start streamStart
	s, err := e.client.Stream(ctx, e.subject, topicReq("cancel"), &start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case err := <-e.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ended with %v, want its context cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not stop after Close")
	}
	if e.written.Load() >= streamBody {
		t.Error("the handler wrote everything although the caller closed")
	}
}

// A caller that vanishes (its connection gone) is noticed by the worker.
func TestStreamWorkerNoticesALostCaller(t *testing.T) {
	e := newStreamEnv(t, 2)
	var start streamStart
	go func() {
		s, err := e.client.Stream(context.Background(), e.subject, topicReq("hold"), &start)
		if err == nil {
			s.Close()
		}
	}()
	testenv.Eventually(t, "the stream to reach the worker", func() bool {
		return e.worker.Stats().InMsgs > 0
	})
	e.caller.Close()
	select {
	case err := <-e.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler ended with %v, want its context cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not notice its caller was gone")
	}
}

// A refusal before the start is the worker's problem; a failure mid-stream breaks
// the stream off with the problem; a worker that vanishes is 503.
func TestStreamErrors(t *testing.T) {
	e := newStreamEnv(t, 2)
	ctx := context.Background()
	var start streamStart
	_, err := e.client.Stream(ctx, e.subject, topicReq("refuse"), &start)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.Invalid || p.Field != "format" {
		t.Errorf("refusal: got %v, want invalid_request on format", err)
	}

	s, err := e.client.Stream(ctx, e.subject, topicReq("fail"), &start)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = s.Next(ctx)
	}
	s.Close()
	if !errors.As(err, &p) || p.Code != problem.UpstreamUnavailable {
		t.Errorf("mid-stream failure: got %v, want upstream_unavailable", err)
	}

	s, err = e.client.Stream(ctx, e.subject, topicReq("lost"), &start)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	e.worker.Close()
	for err == nil {
		_, err = s.Next(ctx)
	}
	if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable {
		t.Errorf("lost worker: got %v, want service_unavailable", err)
	}
}

// Streams beyond a replica's bound are refused at once; no worker at all is 503.
func TestStreamCapacityAndNoWorker(t *testing.T) {
	e := newStreamEnv(t, 1)
	ctx := context.Background()
	var start streamStart
	s, err := e.client.Stream(ctx, e.subject, topicReq("first"), &start)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = e.client.Stream(ctx, e.subject, topicReq("second"), &start)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.RateLimited || p.RetryAfter <= 0 {
		t.Errorf("second stream: got %v, want rate_limited with a retry", err)
	}
	_, err = e.client.Stream(ctx, e.subject+".nobody", topicReq("x"), &start)
	if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable {
		t.Errorf("no worker: got %v, want service_unavailable", err)
	}
}
