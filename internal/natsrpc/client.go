package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// Client calls worker endpoints.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
	metrics *metrics.Metrics
}

// WithMetrics records each call's latency and outcome in m.
func (c *Client) WithMetrics(m *metrics.Metrics) *Client {
	cc := *c
	cc.metrics = m
	return &cc
}

// NewClient returns a client whose calls wait at most timeout when the caller's
// context has no earlier deadline.
func NewClient(nc *nats.Conn, timeout time.Duration) *Client {
	return &Client{nc: nc, timeout: timeout}
}

// retryNoResponders is how long Call waits before its one retry when no worker
// listens: long enough for a restarting replica, short enough for a chatbot.
const retryNoResponders = 200 * time.Millisecond

// Call sends req on subject and decodes the reply into resp. A worker's error comes
// back as the *problem.Error it returned; no worker at all is 503, no answer in
// time is 504.
func (c *Client) Call(ctx context.Context, subject string, req events.Message, resp any) (err error) {
	if c.metrics != nil {
		defer func(start time.Time) {
			outcome := "ok"
			if err != nil {
				outcome = string(problem.CodeOf(err))
			}
			c.metrics.NATSRequestDuration.WithLabelValues(subject, outcome).Observe(time.Since(start).Seconds())
		}(time.Now())
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
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	if errors.Is(err, nats.ErrNoResponders) {
		select {
		case <-time.After(retryNoResponders):
			reply, err = c.nc.RequestMsgWithContext(ctx, msg)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return problem.Wrap(problem.ServiceUnavailable, err, "no worker is available for this request").Retry(time.Second)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return problem.Wrap(problem.Timeout, err, "no answer from the workers in time")
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrConnectionReconnecting):
		return problem.Wrap(problem.ServiceUnavailable, err, "the message bus is unavailable").Retry(time.Second)
	case err != nil:
		return fmt.Errorf("request %s: %w", subject, err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		var doc problem.Document
		if json.Unmarshal(reply.Data, &doc) != nil || doc.Code == "" {
			doc = problem.Document{Code: problem.Code(code), Detail: reply.Header.Get(micro.ErrorHeader)}
		}
		return problem.FromDoc(doc)
	}
	if err := json.Unmarshal(reply.Data, resp); err != nil {
		return fmt.Errorf("decode reply on %s: %w", subject, err)
	}
	return nil
}

func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}
