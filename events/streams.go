package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream streams of the contract. Whoever publishes to a stream or consumes it
// ensures it with the configuration below (broker.EnsureStream), so every side
// creates it alike.

// ExecutionsStream is the EXECUTIONS stream: every state change of every execution,
// as evt.actions.updated.<execution id>. Waiting HTTP requests listen on their
// execution's subject (any replica of the ingress receives the messages); the stream
// keeps the changes for an hour, deduplicated by Nats-Msg-Id (<execution id>.<version>),
// for consumers that join late.
func ExecutionsStream(s Subjects) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Stream(StreamExecutions),
		Description: "state changes of remote-action executions",
		Subjects:    []string{s.Of(ActionsUpdated, ">")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      time.Hour,
		MaxBytes:    256 << 20,
		Duplicates:  2 * time.Minute,
		Replicas:    1,
	}
}

// WebhooksMaxAge bounds how long an unprocessed webhook waits in the WEBHOOKS stream
// for a worker.
const WebhooksMaxAge = 7 * 24 * time.Hour

// WebhooksStream is the WEBHOOKS stream: accepted webhooks, file storage, limits
// retention. The webhooks workers remove what they processed by purging the stream
// up to their consumer's ack floor (see services/webhooks): on a work-queue stream
// every ack removes its message, which writes and syncs a tombstone, one fsync per
// webhook; here an ack is consumer state, written in bulk, and one purge a second
// removes the processed messages together. duplicateWindow is how long JetStream
// drops a repeated Nats-Msg-Id itself; later repeats are caught by the worker's
// record in PostgreSQL.
//
// A stream created with work-queue retention by an earlier version keeps it (the
// retention cannot change in place, see broker.EnsureStream); the workers then
// purge nothing and the acks remove the messages.
func WebhooksStream(s Subjects, duplicateWindow time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Stream(StreamWebhooks),
		Description: "accepted webhooks, until the webhooks worker has processed them",
		Subjects:    []string{s.Of(WebhooksReceived, ">")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // a full stream refuses (503), it never drops accepted webhooks
		MaxAge:      WebhooksMaxAge,
		MaxBytes:    1 << 30,
		Duplicates:  duplicateWindow,
		Replicas:    1,
	}
}
