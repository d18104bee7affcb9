// Package webhooks turns the webhooks the ingress accepted (the WEBHOOKS stream)
// into proactive events.
//
// The Worker is a durable JetStream consumer, shared by every replica, that maps
// each webhook to an alert (package webhookmap), resolves the employees and devices
// it concerns, optionally runs the topic's diagnosis, and records the proactive
// events in PostgreSQL in the same transaction as the webhook's durable dedupe
// record. Delivery is at least once; effects happen once.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
)

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
