package webhooks

import (
	"time"

	"github.com/dexbridge/dexbridge/events"
)

// SetAfterCommit makes the worker call f between a webhook's commit and its ack,
// so a test can kill the worker exactly there.
func SetAfterCommit(o *Options, f func(events.WebhookReceived)) { o.afterCommit = f }

// SetBatchLinger makes a batch wait up to d for its messages, so that a test's
// backlog is taken in full batches.
func SetBatchLinger(o *Options, d time.Duration) { o.linger = d }
