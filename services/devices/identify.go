package devices

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Cache is what identification reads (store.DB).
type Cache interface {
	DevicesOfUser(ctx context.Context, key store.UserKey, value string, limit int) ([]store.CachedDevice, error)
	DevicesByKey(ctx context.Context, key store.DeviceKey, value string, limit int) ([]store.CachedDevice, error)
	DeviceDetails(ctx context.Context, key store.DeviceKey, value string) ([]store.DeviceDetail, error)
	InstancesHealth(ctx context.Context) ([]store.InstanceHealth, error)
	LatestDiscoveryRuns(ctx context.Context) (map[string]store.DiscoveryRun, map[string]store.DiscoveryRun, error)
	CacheSizes(ctx context.Context) (map[string]store.CacheSize, error)
}

// identifier is what a key looks up in the cache.
type identifier struct {
	user    bool
	userKey store.UserKey
	devKey  store.DeviceKey
}

var identifiers = map[string]identifier{
	events.KeyUsername:     {user: true, userKey: store.ByUserName},
	events.KeyUPN:          {user: true, userKey: store.ByUPN},
	events.KeyEmail:        {user: true, userKey: store.ByEmail},
	events.KeySID:          {user: true, userKey: store.BySID},
	events.KeyDeviceName:   {devKey: store.ByDeviceName},
	events.KeyCollectorUID: {devKey: store.ByCollectorUID},
}

// identifierService answers identification requests from the cache, or live from
// the instances that are up when the cache knows nothing of the identifier. It is the
// logic of the worker, without NATS.
type identifierService struct {
	cache   Cache
	limiter ratelimit.Limiter
	live    *livedevices.Finder
	order   []string // the configured instances
	now     func() time.Time
	metrics *metrics.Metrics
}

func (s *identifierService) identify(ctx context.Context, req events.DevicesIdentifyRequest) (events.DevicesIdentifyReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	id := identifiers[req.Key]
	if err := ratelimit.TakeCacheRead(ctx, s.limiter); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	var found []store.CachedDevice
	var err error
	if id.user {
		found, err = s.cache.DevicesOfUser(ctx, id.userKey, req.Value, livedevices.MaxDevices)
	} else {
		found, err = s.cache.DevicesByKey(ctx, id.devKey, req.Value, livedevices.MaxDevices)
	}
	if err != nil {
		return events.DevicesIdentifyReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	reply := events.DevicesIdentifyReply{Header: events.NewHeader(events.TypeDevicesIdentifyReply), Devices: []events.Device{}, Source: events.SourceCache}
	s.metrics.Cache("identify", len(found) > 0)
	if len(found) > 0 {
		for _, d := range found {
			reply.Devices = append(reply.Devices, wireDevice(d, req.Key))
			if reply.DataAsOf == nil || d.RefreshedAt.Before(*reply.DataAsOf) {
				t := d.RefreshedAt.UTC()
				reply.DataAsOf = &t
			}
		}
		return reply, nil
	}
	devs, asked, err := s.live.Find(ctx, req.Key, req.Value)
	if err != nil || !asked {
		return reply, err // with no instance to ask, the cache's empty answer stands
	}
	now := s.now().UTC().Truncate(time.Second)
	reply.Devices = append(reply.Devices, devs...)
	reply.Source, reply.DataAsOf = events.SourceLive, &now
	return reply, nil
}

func wireDevice(d store.CachedDevice, matchedBy string) events.Device {
	return events.Device{
		CollectorUID: d.CollectorUID, Name: d.Name, Instance: d.Instance, Platform: d.Platform,
		OSName: d.OSName, OSVersion: d.OSVersion, HardwareType: d.HardwareType,
		HardwareManufacturer: d.HardwareManufacturer, HardwareModel: d.HardwareModel,
		LastSeen: wire.UTC(d.LastSeen), LastActivity: wire.UTC(d.LastActivity), ActivitySource: d.ActivitySource,
		User: d.User, MatchedBy: matchedBy,
	}
}

// get answers one device by name or collector UID from the cache.
func (s *identifierService) get(ctx context.Context, req events.DevicesGetRequest) (events.DevicesGetReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesGetReply{}, err
	}
	if err := ratelimit.TakeCacheRead(ctx, s.limiter); err != nil {
		return events.DevicesGetReply{}, err
	}
	key, matchedBy := store.ByDeviceName, events.KeyDeviceName
	if events.IsCollectorUID(req.Device) {
		key, matchedBy = store.ByCollectorUID, events.KeyCollectorUID
	}
	found, err := s.cache.DeviceDetails(ctx, key, req.Device)
	if err == nil {
		s.metrics.Cache("device", len(found) > 0)
	}
	if err != nil {
		return events.DevicesGetReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	if len(found) == 0 {
		return events.DevicesGetReply{}, problem.New(problem.NotFound, "no device %q in the cache", req.Device)
	}
	d := found[0]
	detail := events.DeviceDetail{
		Device: wireDevice(d.CachedDevice, matchedBy), UID: d.UID, LastLogonUser: d.LastLogonUser,
		LastLogonTime: wire.UTC(d.LastLogonTime), Fields: d.Fields, Users: []events.DeviceUser{},
	}
	if detail.Fields == nil {
		detail.Fields = map[string]any{}
	}
	for _, u := range d.Users {
		detail.Users = append(detail.Users, events.DeviceUser{Name: u.Name, UPN: u.UPN, LastActivity: u.LastActivity.UTC(), Source: u.Source})
	}
	asOf := d.RefreshedAt.UTC()
	reply := events.DevicesGetReply{Header: events.NewHeader(events.TypeDevicesGetReply), Device: detail,
		Source: events.SourceCache, DataAsOf: &asOf}
	for _, o := range found[1:] {
		reply.OtherMatches = append(reply.OtherMatches, events.DeviceRef{Instance: o.Instance, CollectorUID: o.CollectorUID,
			Name: o.Name, LastSeen: wire.UTC(o.LastSeen)})
	}
	return reply, nil
}
