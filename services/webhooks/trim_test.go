package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

// holdingResolver fails the lookups of one device while hold is set, and answers
// the others from the cache. It resolves one device at a time (not a
// BatchResolver).
type holdingResolver struct {
	cache  webhooks.CacheResolver
	device string
	hold   atomic.Bool
}

func (h *holdingResolver) UsersOfDevice(ctx context.Context, instance, device string) (*webhooks.Device, []webhooks.Employee, error) {
	if device == h.device && h.hold.Load() {
		return nil, nil, errors.New("cache unavailable")
	}
	return h.cache.UsersOfDevice(ctx, instance, device)
}

func (h *holdingResolver) DevicesOfUser(ctx context.Context, instance, user string) (*webhooks.Employee, []webhooks.Device, error) {
	return h.cache.DevicesOfUser(ctx, instance, user)
}

// TestProcessedWebhooksLeaveTheStream: the worker purges the webhooks it processed
// from the stream, and only those below the first it has not: a webhook still
// being retried, and the processed ones after it, stay until it is processed too.
func TestProcessedWebhooksLeaveTheStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := &holdingResolver{cache: webhooks.CacheResolver{DB: e.pool}, device: "PC-HELD"}
	res.hold.Store(true)
	e.startWorker(t, func(o *webhooks.Options) {
		o.Resolver = res
		o.MaxDeliveries = 1000
		o.RetryBase = 100 * time.Millisecond
	})
	devices := []string{"PC-A1", "PC-A2", "PC-A3", "PC-HELD", "PC-B1", "PC-B2", "PC-B3"}
	for _, d := range devices {
		if a := e.nexthink(t, alert("Slow PC", "open", d, "", ""), nil); a.status != 202 {
			t.Fatalf("%s: got %d, want 202", d, a.status)
		}
	}
	stream, err := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamWebhooks))
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		info, err := stream.Info(context.Background())
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%d messages from %d", info.State.Msgs, info.State.FirstSeq)
	}
	waitFor(t, "the six webhooks not held processed", func() bool { return len(e.deliveries(t)) == len(devices)-1 })
	// The held webhook is the fourth message: it and the three after it stay.
	waitFor(t, "the stream purged up to the held webhook", func() bool { return state() == "4 messages from 4" })

	res.hold.Store(false)
	waitFor(t, "the held webhook processed", func() bool { return len(e.deliveries(t)) == len(devices) })
	waitFor(t, "the stream purged", func() bool { return state() == "0 messages from 8" })
}

// TestWorkQueueStreamFromAnEarlierVersion: a work-queue WEBHOOKS stream, as an
// earlier version created it, keeps working (the acks empty it) and the worker says
// how to move it; deleted once empty, as docs/webhooks.md tells, it comes back with
// limits retention and the worker purges it.
func TestWorkQueueStreamFromAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	old := events.WebhooksStream(e.subjects, e.dupWindow)
	old.Retention = jetstream.WorkQueuePolicy
	if _, err := e.js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.js.DeleteStream(context.Background(), old.Name) })
	e.startWorker(t, nil)
	info := func() *jetstream.StreamInfo {
		s, err := e.js.Stream(ctx, old.Name)
		if err != nil {
			return nil
		}
		i, err := s.Info(ctx)
		if err != nil {
			return nil
		}
		return i
	}
	processed := func(device string, n int) {
		t.Helper()
		if a := e.nexthink(t, alert("Slow PC", "open", device, "", ""), nil); a.status != 202 {
			t.Fatalf("%s: got %d, want 202", device, a.status)
		}
		waitFor(t, device+" processed", func() bool { return len(e.deliveries(t)) == n })
		waitFor(t, "the stream emptied", func() bool { i := info(); return i != nil && i.State.Msgs == 0 })
	}
	processed("PC-OLD", 1)
	if i := info(); i.Config.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("got %v retention, want the stream's work-queue", i.Config.Retention)
	}
	if !strings.Contains(e.logs.String(), "webhooks stream has work-queue retention") {
		t.Error("the worker did not say the stream has work-queue retention")
	}

	if err := e.js.DeleteStream(ctx, old.Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker to create the stream anew", func() bool {
		i := info()
		return i != nil && i.Config.Retention == jetstream.LimitsPolicy
	})
	processed("PC-NEW", 2)
}
