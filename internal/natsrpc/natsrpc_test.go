package natsrpc_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

type echoReply struct {
	events.Header
	Topic     string `json:"topic"`
	RequestID string `json:"request_id"`
	Deadline  bool   `json:"deadline"`
}

func getReq(topic string) events.TopicsGetRequest {
	return events.TopicsGetRequest{Header: events.NewHeader(events.TypeTopicsGetRequest), Topic: topic}
}

func TestCallCarriesRequestIDDeadlineAndErrors(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "echo", "1.0.0", "test", 4, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	err = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(ctx context.Context, req events.TopicsGetRequest) (echoReply, error) {
			switch req.Topic {
			case "missing":
				return echoReply{}, problem.InvalidField("topic", "no such topic")
			case "boom":
				return echoReply{}, errors.New("database password=hunter2 exploded")
			case "panic":
				panic("handler bug")
			}
			_, hasDeadline := ctx.Deadline()
			return echoReply{Topic: req.Topic, RequestID: requestid.From(ctx), Deadline: hasDeadline}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	client := natsrpc.NewClient(nc, 5*time.Second)
	ctx := requestid.With(context.Background(), "req-123")

	var got echoReply
	if err := client.Call(ctx, subject, getReq("outlook"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Topic != "outlook" || got.RequestID != "req-123" || !got.Deadline {
		t.Errorf("got %+v, want the topic echoed with request id req-123 and a deadline", got)
	}

	err = client.Call(ctx, subject, getReq("missing"), &got)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.Invalid || p.Field != "topic" {
		t.Errorf("got %v, want invalid_request on field topic", err)
	}
	for _, topic := range []string{"boom", "panic"} {
		err = client.Call(ctx, subject, getReq(topic), &got)
		if !errors.As(err, &p) || p.Code != problem.Internal {
			t.Errorf("%s: got %v, want internal", topic, err)
		}
		if p != nil && (p.Detail != "an internal error occurred") {
			t.Errorf("%s: detail %q must not reveal the cause", topic, p.Detail)
		}
	}
	// A request of the wrong type is refused, not misread.
	err = client.Call(ctx, subject, events.TopicsListRequest{Header: events.NewHeader(events.TypeTopicsListRequest)}, &got)
	if !errors.As(err, &p) || p.Code != problem.Invalid {
		t.Errorf("wrong type: got %v, want invalid_request", err)
	}
}

func TestNoWorkerIsServiceUnavailable(t *testing.T) {
	nc := testenv.NATS(t)
	client := natsrpc.NewClient(nc, 2*time.Second)
	var reply echoReply
	err := client.Call(context.Background(), testenv.Prefix(t)+".req.topics.get", getReq("x"), &reply)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable || p.RetryAfter == 0 {
		t.Fatalf("got %v, want service_unavailable with a Retry-After", err)
	}
}

func TestSlowWorkerIsTimeout(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "slow", "1.0.0", "test", 1, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release); _ = srv.Stop(context.Background()) })
	_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(ctx context.Context, _ events.TopicsGetRequest) (echoReply, error) {
			select {
			case <-release:
			case <-ctx.Done(): // the caller's deadline reached the worker
			}
			return echoReply{}, ctx.Err()
		})
	client := natsrpc.NewClient(nc, 200*time.Millisecond)
	var reply echoReply
	err = client.Call(context.Background(), subject, getReq("x"), &reply)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.Timeout {
		t.Fatalf("got %v, want timeout", err)
	}
}

// TestHandlersRunConcurrently shows a slow handler does not serialise the endpoint:
// with concurrency 8, eight requests are inside the handler at the same time.
func TestHandlersRunConcurrently(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "wide", "1.0.0", "test", 8, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	var inside, peak atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(ctx context.Context, _ events.TopicsGetRequest) (echoReply, error) {
			n := inside.Add(1)
			defer inside.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if n == 8 {
				once.Do(func() { close(all) })
			}
			select {
			case <-all:
			case <-ctx.Done():
			}
			return echoReply{}, nil
		})
	client := natsrpc.NewClient(nc, 10*time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r echoReply
			if err := client.Call(context.Background(), subject, getReq("x"), &r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := peak.Load(); got != 8 {
		t.Errorf("peak concurrent handlers: got %d, want 8", got)
	}
}

// TestStopWaitsForInFlight shows a stopping worker answers the request it is
// handling instead of dropping it.
func TestStopWaitsForInFlight(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "graceful", "1.0.0", "test", 2, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(ctx context.Context, req events.TopicsGetRequest) (echoReply, error) {
			close(started)
			<-release
			return echoReply{Topic: req.Topic}, nil
		})
	client := natsrpc.NewClient(nc, 10*time.Second)
	done := make(chan error, 1)
	go func() {
		var r echoReply
		err := client.Call(context.Background(), subject, getReq("inflight"), &r)
		if err == nil && r.Topic != "inflight" {
			err = errors.New("wrong reply")
		}
		done <- err
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestLostWorker: a request whose worker dies with it (here, a queue member that
// takes the request and says nothing, then leaves) is sent once more when the call
// is idempotent, and answered by the peer; any other call fails at once with 503
// instead of waiting for its deadline. Neither waits much longer than LostAfter.
func TestLostWorker(t *testing.T) {
	const lostAfter = 300 * time.Millisecond
	for _, tt := range []struct {
		name       string
		opts       []natsrpc.CallOption
		wantErr    bool
		wantServed int32
	}{
		{"idempotent: retried on the peer", []natsrpc.CallOption{natsrpc.Idempotent}, false, 1},
		{"idempotent if an idempotency key is given", []natsrpc.CallOption{natsrpc.IdempotentIf(true)}, false, 1},
		{"not idempotent: 503, not sent again", []natsrpc.CallOption{natsrpc.IdempotentIf(false)}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc := testenv.NATS(t)
			subject := testenv.Prefix(t) + ".req.topics.get"
			// The doomed worker: a member of the queue group that never answers.
			took := make(chan struct{}, 1)
			doomed, err := nc.QueueSubscribe(subject, "echo", func(*nats.Msg) { took <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			client := natsrpc.NewClient(nc, 30*time.Second).WithLostAfter(lostAfter)
			type result struct {
				err  error
				took time.Duration
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				var r echoReply
				err := client.Call(context.Background(), subject, getReq("x"), &r, tt.opts...)
				done <- result{err, time.Since(start)}
			}()
			<-took
			// It dies with the request; its peer is there.
			if err := doomed.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			var served atomic.Int32
			srv, err := natsrpc.NewServer(nc, "echo", "1.0.0", "test", 2, logging.Discard())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Stop(context.Background()) })
			_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
				func(_ context.Context, req events.TopicsGetRequest) (echoReply, error) {
					served.Add(1)
					return echoReply{Topic: req.Topic}, nil
				})
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			r := <-done
			var p *problem.Error
			switch {
			case tt.wantErr && (!errors.As(r.err, &p) || p.Code != problem.ServiceUnavailable || p.RetryAfter == 0):
				t.Errorf("got %v, want service_unavailable with a Retry-After", r.err)
			case !tt.wantErr && r.err != nil:
				t.Errorf("got %v, want the peer's answer", r.err)
			}
			if got := served.Load(); got != tt.wantServed {
				t.Errorf("the peer served %d requests, want %d", got, tt.wantServed)
			}
			if r.took > 5*lostAfter {
				t.Errorf("the call took %s, want about %s (the lost-after bound), far less than the 30 s timeout", r.took, lostAfter)
			}
		})
	}
}

// TestSlowWorkerIsNotLost: a worker busy for many lost-after periods says so with
// progress messages; the call waits for its answer and sends the request only once.
func TestSlowWorkerIsNotLost(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "slowpoke", "1.0.0", "test", 2, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	const lostAfter = 200 * time.Millisecond
	var served atomic.Int32
	_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(ctx context.Context, req events.TopicsGetRequest) (echoReply, error) {
			served.Add(1)
			select {
			case <-time.After(6 * lostAfter):
			case <-ctx.Done():
			}
			return echoReply{Topic: req.Topic}, ctx.Err()
		})
	client := natsrpc.NewClient(nc, 10*time.Second).WithLostAfter(lostAfter)
	var r echoReply
	if err := client.Call(context.Background(), subject, getReq("slow"), &r, natsrpc.Idempotent); err != nil || r.Topic != "slow" {
		t.Fatalf("got %+v, %v, want the slow answer", r, err)
	}
	if got := served.Load(); got != 1 {
		t.Errorf("the request was handled %d times, want once", got)
	}
}

// TestBusDownFailsFast: with the NATS server gone, a call is refused at once with
// 503 and Retry-After instead of being buffered until its deadline.
func TestBusDownFailsFast(t *testing.T) {
	srv := testenv.StartNATS(t, t.TempDir())
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	srv.Shutdown()
	srv.WaitForShutdown()
	client := natsrpc.NewClient(nc, 20*time.Second)
	start := time.Now()
	var r echoReply
	err = client.Call(context.Background(), "t.req.topics.get", getReq("x"), &r, natsrpc.Idempotent)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable || p.RetryAfter == 0 {
		t.Errorf("got %v, want service_unavailable with a Retry-After", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the call took %s, want an answer at once", took)
	}
}

// TestMaxInFlightSheds: a client bounded to two waiting calls answers a third at once
// with 503 and Retry-After, without sending it, and takes calls again once a slot
// is free.
func TestMaxInFlightSheds(t *testing.T) {
	nc := testenv.NATS(t)
	subject := testenv.Prefix(t) + ".req.topics.get"
	srv, err := natsrpc.NewServer(nc, "held", "1.0.0", "test", 4, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	release := make(chan struct{})
	var served atomic.Int32
	_ = natsrpc.Endpoint(srv, "get", subject, events.TypeTopicsGetRequest,
		func(_ context.Context, req events.TopicsGetRequest) (echoReply, error) {
			served.Add(1)
			if req.Topic == "held" {
				<-release
			}
			return echoReply{Topic: req.Topic}, nil
		})
	client := natsrpc.NewClient(nc, 10*time.Second).WithMaxInFlight(2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			var r echoReply
			if err := client.Call(context.Background(), subject, getReq("held"), &r); err != nil {
				t.Errorf("held call: %v", err)
			}
		})
	}
	for served.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	var r echoReply
	err = client.Call(context.Background(), subject, getReq("third"), &r)
	var p *problem.Error
	if !errors.As(err, &p) || p.Code != problem.ServiceUnavailable || p.RetryAfter == 0 {
		t.Errorf("third call: got %v, want service_unavailable with a Retry-After", err)
	}
	if got := served.Load(); got != 2 {
		t.Errorf("the worker got %d requests, want 2: the shed call must not be sent", got)
	}
	close(release)
	wg.Wait()
	if err := client.Call(context.Background(), subject, getReq("after"), &r); err != nil || r.Topic != "after" {
		t.Errorf("after the slots were freed: got %+v, %v", r, err)
	}
}
