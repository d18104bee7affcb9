package natsrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// BroadcastEndpoint registers h on subject outside the service's queue group, so
// every replica receives each request and answers it: for commands each process must
// obey (reload your files). Callers gather the answers with Client.CallAll.
func BroadcastEndpoint[Req events.Message, Resp any](s *Server, name, subject, reqType string, h Handler[Req, Resp]) error {
	return addEndpoint(s, name, subject, reqType, h, micro.WithEndpointQueueGroupDisabled())
}

// ID is the service instance's id, unique per replica (NATS micro discovery shows it).
func (s *Server) ID() string { return s.svc.Info().ID }

// discoveryWindow is how long CallAll listens for the replicas' discovery answers;
// they answer at once, so this is the round trip plus slack.
const discoveryWindow = 250 * time.Millisecond

// CallAll sends req on subject to every service instance that serves subject on a
// broadcast endpoint (every replica of every service that registered one), and calls
// each with every raw reply. It first counts those instances with NATS micro
// discovery ($SRV.INFO), then waits until each has answered or ctx ends. expected is
// the number of instances found; answered how many replied. None at all is a
// service_unavailable problem.
func (c *Client) CallAll(ctx context.Context, subject string, req events.Message, each func([]byte) error) (answered, expected int, err error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	expected, err = c.servers(ctx, subject)
	if err != nil {
		return 0, 0, err
	}
	if expected == 0 {
		return 0, 0, problem.New(problem.ServiceUnavailable, "no worker serves %s", subject).Retry(time.Second)
	}
	data, err := json.Marshal(req)
	if err != nil {
		return 0, expected, fmt.Errorf("encode %s: %w", req.MessageHeader().Type, err)
	}
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, expected, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(subject)
	msg.Reply, msg.Data = inbox, data
	for k, v := range headersFrom(ctx) {
		msg.Header.Set(k, v)
	}
	if d, ok := ctx.Deadline(); ok {
		msg.Header.Set(HeaderDeadline, fmt.Sprint(d.UnixMilli()))
	}
	if err := c.nc.PublishMsg(msg); err != nil {
		return 0, expected, fmt.Errorf("publish %s: %w", subject, err)
	}
	for answered < expected {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return answered, expected, nil // the others did not answer in time
		}
		answered++
		if err := replyProblem(m); err != nil {
			return answered, expected, err
		}
		if err := each(m.Data); err != nil {
			return answered, expected, err
		}
	}
	return answered, expected, nil
}

// servers counts the service instances whose endpoints include subject.
func (c *Client) servers(ctx context.Context, subject string) (int, error) {
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.PublishRequest("$SRV.INFO", inbox, nil); err != nil {
		return 0, fmt.Errorf("discover the servers of %s: %w", subject, err)
	}
	wctx, cancel := context.WithTimeout(ctx, discoveryWindow)
	defer cancel()
	seen := map[string]bool{}
	for {
		m, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			return len(seen), nil
		}
		var info micro.Info
		if json.Unmarshal(m.Data, &info) != nil {
			continue
		}
		for _, e := range info.Endpoints {
			if e.Subject == subject {
				seen[info.ID] = true
			}
		}
	}
}
