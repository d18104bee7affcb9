package webhooks

import "github.com/dexbridge/dexbridge/events"

// SetAfterCommit makes the worker call f between a webhook's commit and its ack,
// so a test can kill the worker exactly there.
func SetAfterCommit(o *Options, f func(events.WebhookReceived)) { o.afterCommit = f }
