package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// ProactiveFeedOptions configure the feed.
type ProactiveFeedOptions struct {
	DB       *store.DB
	Conn     *nats.Conn // optional: a stream wakes as soon as an event is recorded
	Subjects events.Subjects
	// FeedConfig is the tuning; the zero one is DefaultConfig's.
	FeedConfig
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// ProactiveFeed serves the proactive events the webhooks worker records to chatbots
// that poll the feed with a cursor or follow it as server-sent events. PostgreSQL
// holds the feed, so every replica serves it. It holds no state but the signal that
// ends the streams at shutdown.
type ProactiveFeed struct {
	o        ProactiveFeedOptions
	stop     chan struct{}
	stopOnce sync.Once
}

// NewProactiveFeed returns a feed.
func NewProactiveFeed(o ProactiveFeedOptions) *ProactiveFeed {
	if o.FeedConfig == (FeedConfig{}) {
		o.FeedConfig = DefaultConfig().Feed
	}
	return &ProactiveFeed{o: o, stop: make(chan struct{})}
}

// Heartbeat is the stream heartbeat interval.
func (f *ProactiveFeed) Heartbeat() time.Duration { return f.o.Heartbeat }

// Shutdown ends every stream (the server is stopping); it is safe to call twice.
func (f *ProactiveFeed) Shutdown() { f.stopOnce.Do(func() { close(f.stop) }) }

func feedUnavailable(err error) error {
	return problem.Wrap(problem.ServiceUnavailable, err, "the proactive events cannot be read right now").Retry(2 * time.Second)
}

// List returns up to limit events after the cursor, and the cursor to pass next.
func (f *ProactiveFeed) List(ctx context.Context, after int64, limit int) ([]events.ProactiveEvent, int64, error) {
	rows, err := f.o.DB.ProactiveFeed(ctx, after, limit)
	if err != nil {
		return nil, 0, feedUnavailable(err)
	}
	out := make([]events.ProactiveEvent, 0, len(rows))
	next := after
	for _, r := range rows {
		out = append(out, wire.ProactiveEvent(r))
		next = *r.FeedSeq
	}
	f.count("pull", len(out))
	return out, next, nil
}

func (f *ProactiveFeed) count(channel string, n int) {
	if f.o.Metrics != nil && n > 0 {
		f.o.Metrics.ProactiveDeliveries.WithLabelValues(channel, "delivered").Add(float64(n))
	}
}

// Ack records that a chatbot took an event in hand, and stops its callbacks.
func (f *ProactiveFeed) Ack(ctx context.Context, id, by string) (events.ProactiveEvent, error) {
	e, err := f.o.DB.AckProactiveEvent(ctx, id, by)
	if errors.Is(err, store.ErrNotFound) {
		return events.ProactiveEvent{}, problem.New(problem.NotFound, "no proactive event %q", id)
	}
	if err != nil {
		return events.ProactiveEvent{}, feedUnavailable(err)
	}
	return wire.ProactiveEvent(e), nil
}

// Head is the cursor of the latest event: a stream opened without a cursor starts
// there.
func (f *ProactiveFeed) Head(ctx context.Context) (int64, error) {
	h, err := f.o.DB.ProactiveFeedHead(ctx)
	if err != nil {
		return 0, feedUnavailable(err)
	}
	return h, nil
}

// Stream sends every event after the cursor, then each new one as it is recorded,
// calling ping when idle for a heartbeat. It returns nil when ctx ends or the feed
// shuts down, and the error of send or ping (the client went away) otherwise.
func (f *ProactiveFeed) Stream(ctx context.Context, after int64, send func(cursor int64, ev events.ProactiveEventChanged) error, ping func() error) error {
	wake := make(chan struct{}, 1)
	if f.o.Conn != nil {
		sub, err := f.o.Conn.Subscribe(f.o.Subjects.Of(events.ProactiveChanged), func(*nats.Msg) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return fmt.Errorf("proactive stream: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	heartbeat := time.NewTicker(f.o.Heartbeat)
	defer heartbeat.Stop()
	poll := time.NewTicker(f.o.Poll)
	defer poll.Stop()
	cursor := after
	for {
		for {
			rows, err := f.o.DB.ProactiveFeed(ctx, cursor, 100)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.o.Log.Warn("proactive stream cannot read the feed", "err", err)
				break // try again at the next poll
			}
			for _, r := range rows {
				if err := send(*r.FeedSeq, wire.ProactiveChanged(r, wire.ProactiveKind(r), "")); err != nil {
					return err
				}
				cursor = *r.FeedSeq
			}
			f.count("sse", len(rows))
			if len(rows) > 0 {
				heartbeat.Reset(f.o.Heartbeat)
			}
			if len(rows) < 100 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.stop:
			return nil
		case <-wake:
		case <-poll.C:
		case <-heartbeat.C:
			if err := ping(); err != nil {
				return err
			}
		}
	}
}
