package topics

import (
	"context"
	"errors"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// Cache is what the worker reads of the cache (store.DB): a device with its cached
// fields, which instances are down, and which identifiers they did not know.
type Cache interface {
	DeviceWithFields(ctx context.Context, key store.DeviceKey, value string) (store.DeviceFields, error)
	livedevices.Health
	livedevices.Memory
}

// deviceResolver finds the device of a diagnosis or a saved query: in the cache,
// with its cached fields, in one query; else live, on the instances that are up.
type deviceResolver struct {
	cache   Cache
	limiter ratelimit.Limiter // the cache's deployment-wide budget; nil: none
	live    *livedevices.Finder
	metrics *metrics.Metrics
}

// Resolve implements wrapper.Resolver. A saved query's parameter is any value: one
// that no device can have names none.
func (r deviceResolver) Resolve(ctx context.Context, device string) (wrapper.Device, error) {
	notFound := problem.New(problem.NotFound, "no device %q: the cache does not have it and no Nexthink instance knows it", device)
	if events.CheckDevice(device) != nil {
		return wrapper.Device{}, notFound
	}
	if err := ratelimit.TakeCacheRead(ctx, r.limiter, natsrpc.Header(ctx, events.HeaderAPIKeyID)); err != nil {
		return wrapper.Device{}, err
	}
	key, liveKey := store.ByDeviceName, events.KeyDeviceName
	if events.IsCollectorUID(device) {
		key, liveKey = store.ByCollectorUID, events.KeyCollectorUID
	}
	d, err := r.cache.DeviceWithFields(ctx, key, device)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		r.metrics.Cache("device", err == nil)
	}
	switch {
	case err == nil:
		out := wrapper.Device{Name: d.Name, CollectorUID: d.CollectorUID, UID: d.UID, Instance: d.Instance, Platform: d.Platform,
			LastSeen: d.LastSeen, Fields: d.Fields, CachedAt: d.RefreshedAt.UTC()}
		if out.Fields == nil {
			out.Fields = map[string]any{}
		}
		return out, nil
	case !errors.Is(err, store.ErrNotFound):
		return wrapper.Device{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	found, _, err := r.live.Find(ctx, liveKey, device)
	if err != nil {
		return wrapper.Device{}, err
	}
	if len(found) == 0 {
		return wrapper.Device{}, notFound
	}
	// A live answer carries no cached fields: the queries go to the device's instance.
	f := found[0]
	return wrapper.Device{Name: f.Name, CollectorUID: f.CollectorUID, Instance: f.Instance, Platform: f.Platform, LastSeen: f.LastSeen}, nil
}
