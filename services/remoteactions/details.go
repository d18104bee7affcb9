package remoteactions

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// detailsCache keeps each instance's details of a remote action for a while: the
// inputs and platforms change when an administrator edits the action, not between
// two triggers, and every details call takes from the instance's Remote Actions API
// budget (MAX_PORTAL_REQUESTS_PER_SECOND).
type detailsCache struct {
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[string]detailsEntry // instance + "\x00" + remote action id
}

type detailsEntry struct {
	details *nexthink.RemoteAction
	at      time.Time
}

func newDetailsCache(ttl time.Duration, now func() time.Time) *detailsCache {
	return &detailsCache{ttl: ttl, now: now, entries: map[string]detailsEntry{}}
}

// get returns the details of remote action id on an instance, from the cache or from
// up. Concurrent misses of one action share a single call.
func (c *detailsCache) get(ctx context.Context, instance, id string, up Upstream) (*nexthink.RemoteAction, error) {
	key := instance + "\x00" + id
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.details, nil
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		d, err := up.RemoteAction(ctx, id)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.entries[key] = detailsEntry{details: d, at: c.now()}
		c.mu.Unlock()
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	d, _ := v.(*nexthink.RemoteAction)
	if d == nil {
		return nil, errors.New("remote action details: empty answer")
	}
	return d, nil
}
