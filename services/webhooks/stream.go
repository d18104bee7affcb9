// Package webhooks takes webhooks in and turns them into proactive events.
//
// The Receiver is the ingress's half: it authenticates a webhook for its source
// (Basic or Bearer, and an HMAC signature when the source signs), computes its dedupe
// key and publishes it to the WEBHOOKS stream with Nats-Msg-Id, waiting for
// JetStream's acknowledgement before the ingress answers 202.
//
// The Worker is the other half: a durable JetStream consumer, shared by every
// replica, that maps each webhook to an alert (package webhookmap), resolves the
// employees and devices it concerns, optionally runs the topic's diagnosis, and
// records the proactive events in PostgreSQL in the same transaction as the
// webhook's durable dedupe record. Delivery is at least once; effects happen once.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/broker"
)

// StreamOptions shape the WEBHOOKS stream.
type StreamOptions struct {
	// DuplicateWindow is how long JetStream drops a repeated Nats-Msg-Id itself
	// (default 2 minutes); later repeats are caught by the record in PostgreSQL.
	DuplicateWindow time.Duration
	// MaxAge bounds how long an unprocessed webhook waits for a worker (default 7 days).
	MaxAge time.Duration
}

// EnsureStream creates the WEBHOOKS stream, or updates it to these options: file
// storage, work-queue retention (a webhook leaves the stream once a worker acks it).
func EnsureStream(ctx context.Context, js jetstream.JetStream, subjects events.Subjects, o StreamOptions) (jetstream.Stream, error) {
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	cfg := jetstream.StreamConfig{
		Name:        subjects.Stream(events.StreamWebhooks),
		Description: "accepted webhooks, until the webhooks worker has processed them",
		Subjects:    []string{subjects.Of(events.WebhooksReceived, ">")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew, // a full stream refuses (503), it never drops accepted webhooks
		MaxAge:      o.MaxAge,
		MaxBytes:    1 << 30,
		Duplicates:  o.DuplicateWindow,
		Replicas:    1,
	}
	s, err := broker.EnsureStream(ctx, js, cfg)
	if err != nil {
		return nil, fmt.Errorf("webhooks stream: %w", err)
	}
	return s, nil
}

// ConsumerName is the durable consumer the workers share.
const ConsumerName = "webhooks"

// ensureConsumer creates or updates the workers' durable consumer. The server's
// MaxDeliver is a backstop two deliveries above the worker's own limit, at which the
// worker records the webhook as failed and terminates it.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, subjects events.Subjects, ackWait time.Duration, maxDeliveries int) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, subjects.Stream(events.StreamWebhooks), jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "webhooks worker: maps webhooks to proactive events",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliveries + 2,
		MaxAckPending: 1000,
		FilterSubject: subjects.Of(events.WebhooksReceived, ">"),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks consumer: %w", err)
	}
	return c, nil
}

// streamGone reports errors that mean the stream or consumer no longer exists.
func streamGone(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoStreamResponse)
}
