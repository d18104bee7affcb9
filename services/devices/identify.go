package devices

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/livedevices"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Cache is what identification reads (store.DB).
type Cache interface {
	DevicesOfUsers(ctx context.Context, qs []store.UserQuery) ([][]store.CachedDevice, error)
	DevicesByKeyOn(ctx context.Context, key store.DeviceKey, value, instance string, limit int) ([]store.CachedDevice, error)
	DeviceDetails(ctx context.Context, key store.DeviceKey, value, instance string) ([]store.DeviceDetail, error)
	InstancesHealth(ctx context.Context) ([]store.InstanceHealth, error)
	LatestDiscoveryRuns(ctx context.Context) (map[string]store.DiscoveryRun, map[string]store.DiscoveryRun, error)
	CacheSizes(ctx context.Context) (map[string]store.CacheSize, error)
	V6Engines(ctx context.Context) ([]store.V6Engine, error)
	livedevices.Memory
}

// userKeys and deviceKeys are the cache's attribute of each identification key.
var (
	userKeys = map[string]store.UserKey{
		events.KeyUsername: store.ByUserName, events.KeyUPN: store.ByUPN, events.KeyEmail: store.ByEmail, events.KeySID: store.BySID,
	}
	deviceKeys = map[string]store.DeviceKey{
		events.KeyDeviceName: store.ByDeviceName, events.KeyCollectorUID: store.ByCollectorUID,
	}
)

// identifierService answers identification requests from the cache, or live from
// the instances that are up when the cache knows nothing of the identifier. It is the
// logic of the worker, without NATS.
type identifierService struct {
	cache     Cache
	users     *userBatcher // the devices of users, read for concurrent requests together
	limiter   ratelimit.Limiter
	live      *livedevices.Finder
	order     []string          // the configured instances
	upstreams map[string]string // their upstream types
	// engines is the driver of each configured V6 instance, which names its
	// Engines.
	engines      map[string]engineLister
	now          func() time.Time
	onlineWithin time.Duration
	metrics      *metrics.Metrics
}

// checkInstance refuses an instance that is not configured ("" is every instance).
func (s *identifierService) checkInstance(name string) error {
	if name == "" || slices.Contains(s.order, name) {
		return nil
	}
	if len(s.order) == 0 {
		return problem.InvalidField("instance", "no instance %q: none is configured", name)
	}
	return problem.InvalidField("instance", "no instance %q: want one of %s", name, strings.Join(s.order, ", "))
}

func (s *identifierService) identify(ctx context.Context, req events.DevicesIdentifyRequest) (events.DevicesIdentifyReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	if err := s.checkInstance(req.Instance); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	if err := ratelimit.TakeCacheRead(ctx, s.limiter, natsrpc.Header(ctx, events.HeaderAPIKeyID)); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	matches := events.UserMatches(req.Key, req.Value)
	var found []store.CachedDevice
	var err error
	if matches != nil {
		sm := make([]store.UserMatch, len(matches))
		for k, m := range matches {
			sm[k] = store.UserMatch{Key: userKeys[m.Key], Value: m.Value, MatchedBy: m.MatchedBy}
		}
		found, err = s.users.devicesOfUser(ctx, store.UserQuery{Matches: sm, Instance: req.Instance, Limit: livedevices.MaxDevices})
	} else {
		found, err = s.cache.DevicesByKeyOn(ctx, deviceKeys[req.Key], req.Value, req.Instance, livedevices.MaxDevices)
	}
	if err != nil {
		return events.DevicesIdentifyReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	reply := events.DevicesIdentifyReply{Header: events.NewHeader(events.TypeDevicesIdentifyReply), Devices: []events.Device{}, Source: events.SourceCache}
	s.metrics.Cache("identify", len(found) > 0)
	now := s.now()
	var whose []person
	if len(found) > 0 {
		for _, d := range found {
			dev := s.wireDevice(d, cmp.Or(d.MatchedBy, req.Key), now)
			reply.Devices = append(reply.Devices, dev)
			whose = append(whose, person{instance: d.Instance, user: d.User, fullName: d.UserFullName, upn: d.UserUPN,
				sid: d.UserSID, matchedBy: dev.MatchedBy})
			if reply.DataAsOf == nil || d.RefreshedAt.Before(*reply.DataAsOf) {
				t := d.RefreshedAt.UTC()
				reply.DataAsOf = &t
			}
		}
	} else {
		a, err := s.live.Lookup(ctx, livedevices.Query{Key: req.Key, Value: req.Value, Instance: req.Instance})
		if err != nil || !a.Asked {
			return reply, err // with no instance to ask, the cache's empty answer stands
		}
		for _, d := range a.Devices {
			d.Presence = events.PresenceAt(d.LastSeen, now, s.onlineWithin)
			reply.Devices = append(reply.Devices, d)
			p := person{instance: d.Instance, user: d.User, matchedBy: d.MatchedBy}
			if d.MatchedBy == events.KeyUPN {
				p.upn = req.Value
			}
			whose = append(whose, p)
		}
		asOf := a.AsOf
		reply.Source, reply.DataAsOf = events.SourceLive, &asOf
	}
	if matches != nil {
		reply.People, reply.Ambiguous = people(reply.Devices, whose)
	}
	return reply, nil
}

// person is who a device was found through.
type person struct {
	instance, user, fullName, upn, sid, matchedBy string
}

// people groups devices (in their order) per person: a user of an instance, or,
// when the user is unknown (a live look-up by UPN, e-mail address or SID), the one
// user the identifier matched on that instance. ambiguous is true when they are not
// all the same person: people on several instances are the same person only when
// their SIDs are known and equal (one directory behind several instances).
func people(devices []events.Device, whose []person) (out []events.Person, ambiguous bool) {
	index := map[[2]string]int{}
	var sids []string
	for k, d := range devices {
		w := whose[k]
		key := [2]string{w.instance, strings.ToLower(w.user)}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, events.Person{Instance: w.instance, User: w.user, FullName: w.fullName, UPN: w.upn,
				MatchedBy: w.matchedBy, Devices: []events.Device{}})
			sids = append(sids, strings.ToUpper(w.sid))
		}
		out[i].Devices = append(out[i].Devices, d)
	}
	for _, sid := range sids[min(1, len(sids)):] {
		if sid == "" || sid != sids[0] {
			return out, true
		}
	}
	return out, false
}

// wireDevice is a cached device as identification answers it, with its presence at
// now as far as the cache can tell (its last discovery read it).
func (s *identifierService) wireDevice(d store.CachedDevice, matchedBy string, now time.Time) events.Device {
	return events.Device{
		CollectorUID: d.CollectorUID, Name: d.Name, Instance: d.Instance, Platform: d.Platform,
		OSName: d.OSName, OSVersion: d.OSVersion, HardwareType: d.HardwareType,
		HardwareManufacturer: d.HardwareManufacturer, HardwareModel: d.HardwareModel,
		LastSeen: wire.UTC(d.LastSeen), Presence: events.PresenceAsOf(d.LastSeen, d.RefreshedAt, now, s.onlineWithin),
		LastActivity: wire.UTC(d.LastActivity), ActivitySource: d.ActivitySource,
		User: d.User, UserFullName: d.UserFullName, MatchedBy: matchedBy,
	}
}

// get answers one device by name or collector UID from the cache, or live from the
// instances when the cache does not have it (a device long unseen is not cached).
func (s *identifierService) get(ctx context.Context, req events.DevicesGetRequest) (events.DevicesGetReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesGetReply{}, err
	}
	if err := s.checkInstance(req.Instance); err != nil {
		return events.DevicesGetReply{}, err
	}
	if err := ratelimit.TakeCacheRead(ctx, s.limiter, natsrpc.Header(ctx, events.HeaderAPIKeyID)); err != nil {
		return events.DevicesGetReply{}, err
	}
	key, matchedBy := store.ByDeviceName, events.KeyDeviceName
	if events.IsCollectorUID(req.Device) {
		key, matchedBy = store.ByCollectorUID, events.KeyCollectorUID
	}
	found, err := s.cache.DeviceDetails(ctx, key, req.Device, req.Instance)
	if err == nil {
		s.metrics.Cache("device", len(found) > 0)
	}
	if err != nil {
		return events.DevicesGetReply{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	now := s.now()
	if len(found) == 0 {
		return s.getLive(ctx, req, matchedBy, now)
	}
	d := found[0]
	detail := events.DeviceDetail{
		Device: s.wireDevice(d.CachedDevice, matchedBy, now), UID: d.UID, LastLogonUser: d.LastLogonUser,
		LastLogonTime: wire.UTC(d.LastLogonTime), Fields: d.Fields, Users: []events.DeviceUser{},
	}
	if detail.Fields == nil {
		detail.Fields = map[string]any{}
	}
	for _, u := range d.Users {
		detail.Users = append(detail.Users, events.DeviceUser{Name: u.Name, FullName: u.FullName, UPN: u.UPN,
			LastActivity: u.LastActivity.UTC(), Source: u.Source})
	}
	asOf := d.RefreshedAt.UTC()
	reply := events.DevicesGetReply{Header: events.NewHeader(events.TypeDevicesGetReply), Device: detail,
		Source: events.SourceCache, DataAsOf: &asOf}
	for _, o := range found[1:] {
		reply.OtherMatches = append(reply.OtherMatches, events.DeviceRef{Instance: o.Instance, CollectorUID: o.CollectorUID,
			Name: o.Name, LastSeen: wire.UTC(o.LastSeen), Presence: events.PresenceAt(o.LastSeen, now, s.onlineWithin)})
	}
	return reply, nil
}

// getLive answers a device the cache does not have from the instances: its
// identification fields, no cached fields.
func (s *identifierService) getLive(ctx context.Context, req events.DevicesGetRequest, key string, now time.Time) (events.DevicesGetReply, error) {
	notFound := problem.New(problem.NotFound, "no device %q: the cache does not have it and no Nexthink instance knows it", req.Device)
	if req.Instance != "" {
		notFound = problem.New(problem.NotFound, "no device %q: neither the cache nor Nexthink instance %s knows it", req.Device, req.Instance)
	}
	a, err := s.live.Lookup(ctx, livedevices.Query{Key: key, Value: req.Device, Instance: req.Instance})
	if err != nil {
		return events.DevicesGetReply{}, err
	}
	if len(a.Devices) == 0 {
		return events.DevicesGetReply{}, notFound
	}
	// The instances answer most recently active first; the answer is the most
	// recently seen, as from the cache.
	devs := slices.Clone(a.Devices)
	slices.SortStableFunc(devs, func(x, y events.Device) int { return compareSeen(y.LastSeen, x.LastSeen) })
	d := devs[0]
	d.Presence = events.PresenceAt(d.LastSeen, now, s.onlineWithin)
	asOf := a.AsOf
	reply := events.DevicesGetReply{Header: events.NewHeader(events.TypeDevicesGetReply),
		Device: events.DeviceDetail{Device: d, Fields: map[string]any{}, Users: []events.DeviceUser{}},
		Source: events.SourceLive, DataAsOf: &asOf}
	for _, o := range devs[1:] {
		reply.OtherMatches = append(reply.OtherMatches, events.DeviceRef{Instance: o.Instance, CollectorUID: o.CollectorUID,
			Name: o.Name, LastSeen: o.LastSeen, Presence: events.PresenceAt(o.LastSeen, now, s.onlineWithin)})
	}
	return reply, nil
}

// compareSeen orders times, a missing one first.
func compareSeen(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}
