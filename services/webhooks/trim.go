package webhooks

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// trimEvery is how often a worker removes from the WEBHOOKS stream what its
// consumer has processed.
const trimEvery = time.Second

// trim purges the stream up to the consumer's ack floor every trimEvery until ctx
// ends. Every message at or below the floor was acknowledged or terminated, so
// none is still to be processed; those above it, pending or not yet delivered,
// stay. Floors only rise, so replicas purging at once, each with the floor it
// read, remove nothing another still needs.
//
// What is processed stays, counting towards the stream's limits, until the next
// purge (a second of intake), and for as long as a webhook before it is still
// being retried: until it succeeds or fails its max_deliveries (about 15 s at the
// defaults), or after a worker's crash, for the ack wait of each redelivery.
//
// A work-queue stream (created by an earlier version, see events.WebhooksStream)
// needs no trimming: an ack removes its message.
func (w *Worker) trim(ctx context.Context, s jetstream.Stream, c jetstream.Consumer) {
	if s.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		w.o.Log.Info("webhooks stream has work-queue retention: each ack removes its webhook, one synced write per webhook; " +
			"to use limits retention, stop the ingresses, let the workers drain the stream, and delete it")
		return
	}
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	var floor uint64
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		info, err := c.Info(ctx)
		if err == nil && info.AckFloor.Stream > floor {
			if err = s.Purge(ctx, jetstream.WithPurgeSequence(info.AckFloor.Stream+1)); err == nil {
				floor = info.AckFloor.Stream
			}
		}
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			w.o.Log.Warn("webhooks stream not trimmed: processed webhooks stay in it until it is", "err", err)
			failing = true
		case err == nil && failing:
			w.o.Log.Info("webhooks stream trimmed again")
			failing = false
		}
	}
}
