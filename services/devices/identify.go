package devices

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
)

// maxDevices bounds an answer: an employee has a handful of devices.
const maxDevices = 50

// Cache is what identification reads (store.DB).
type Cache interface {
	DevicesOfUser(ctx context.Context, key store.UserKey, value string, limit int) ([]store.CachedDevice, error)
	DevicesByKey(ctx context.Context, key store.DeviceKey, value string, limit int) ([]store.CachedDevice, error)
	DeviceDetails(ctx context.Context, key store.DeviceKey, value string) ([]store.DeviceDetail, error)
	InstancesHealth(ctx context.Context) ([]store.InstanceHealth, error)
	LatestDiscoveryRuns(ctx context.Context) (map[string]store.DiscoveryRun, map[string]store.DiscoveryRun, error)
	CacheSizes(ctx context.Context) (map[string]store.CacheSize, error)
}

// Live runs a saved query on one instance (nexthink.Client).
type Live interface {
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
}

// identifier is what a key looks up and which live query answers it.
type identifier struct {
	user     bool
	userKey  store.UserKey
	devKey   store.DeviceKey
	query    string // the live query
	paramKey string // its parameter
}

var identifiers = map[string]identifier{
	events.KeyUsername:     {user: true, userKey: store.ByUserName, query: "#get_device_basic_infos", paramKey: "username"},
	events.KeyUPN:          {user: true, userKey: store.ByUPN, query: "#get_device_basic_infos_by_upn", paramKey: "upn"},
	events.KeyEmail:        {user: true, userKey: store.ByEmail, query: "#get_device_basic_infos_by_email", paramKey: "email"},
	events.KeySID:          {user: true, userKey: store.BySID, query: "#get_device_basic_infos_by_sid", paramKey: "sid"},
	events.KeyDeviceName:   {devKey: store.ByDeviceName, query: "#get_device_basic_infos_by_device_name", paramKey: "device_name"},
	events.KeyCollectorUID: {devKey: store.ByCollectorUID, query: "#get_device_basic_infos_by_collector_uid", paramKey: "collector_uid"},
}

// identifierService answers identification requests from the cache, or live from
// the instances that are up when the cache knows nothing of the identifier. It is the
// logic of the worker, without NATS.
type identifierService struct {
	cache   Cache
	limiter ratelimit.Limiter
	live    map[string]Live // by instance, in order
	order   []string
	now     func() time.Time
	metrics *metrics.Metrics
}

// takeCache takes one call from the cache's deployment-wide budget, or refuses it
// with a 429.
func (s *identifierService) takeCache(ctx context.Context) error {
	_, err := s.limiter.Take(ctx, 0)
	var l *ratelimit.Limited
	switch {
	case errors.As(err, &l):
		return l.Problem("the cache takes at most MAX_CACHE_REQUESTS_PER_SECOND reads per second")
	case err != nil:
		return problem.Wrap(problem.ServiceUnavailable, err, "the cache's rate limit cannot be checked right now").Retry(time.Second)
	}
	return nil
}

func (s *identifierService) identify(ctx context.Context, req events.DevicesIdentifyRequest) (events.DevicesIdentifyReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	id := identifiers[req.Key]
	if err := s.takeCache(ctx); err != nil {
		return events.DevicesIdentifyReply{}, err
	}
	var found []store.CachedDevice
	var err error
	if id.user {
		found, err = s.cache.DevicesOfUser(ctx, id.userKey, req.Value, maxDevices)
	} else {
		found, err = s.cache.DevicesByKey(ctx, id.devKey, req.Value, maxDevices)
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
	return s.identifyLive(ctx, id, req, reply)
}

// identifyLive asks every instance not known to be down, at once, within each one's
// NQL rate limit. Instances that fail are left out; when every one failed, the first
// failure is the answer.
func (s *identifierService) identifyLive(ctx context.Context, id identifier, req events.DevicesIdentifyRequest, reply events.DevicesIdentifyReply) (events.DevicesIdentifyReply, error) {
	health, err := s.cache.InstancesHealth(ctx)
	if err != nil {
		return reply, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	down := map[string]bool{}
	for _, h := range health {
		down[h.Name] = !h.Up
	}
	var targets []string
	for _, name := range s.order {
		if !down[name] {
			targets = append(targets, name)
		}
	}
	if len(targets) == 0 {
		return reply, nil // nothing to ask: the cache's empty answer stands
	}
	type answer struct {
		devices []events.Device
		err     error
	}
	answers := make([]answer, len(targets))
	var wg sync.WaitGroup
	for k, name := range targets {
		wg.Go(func() {
			res, err := s.live[name].Execute(ctx, id.query, map[string]string{id.paramKey: req.Value})
			if err != nil {
				answers[k].err = err
				return
			}
			for _, row := range res.Rows {
				if d, ok := liveDevice(row, name, req.Key); ok {
					answers[k].devices = append(answers[k].devices, d)
				}
			}
		})
	}
	wg.Wait()
	var firstErr error
	ok := 0
	for _, a := range answers {
		if a.err != nil {
			firstErr = cmp.Or(firstErr, a.err)
			continue
		}
		ok++
		reply.Devices = append(reply.Devices, a.devices...)
	}
	if ok == 0 {
		return reply, nexthink.Problem(firstErr)
	}
	slices.SortStableFunc(reply.Devices, func(a, b events.Device) int {
		if c := cmpTimeDesc(a.LastActivity, b.LastActivity); c != 0 {
			return c
		}
		return cmpTimeDesc(a.LastSeen, b.LastSeen)
	})
	if len(reply.Devices) > maxDevices {
		reply.Devices = reply.Devices[:maxDevices]
	}
	now := s.now().UTC().Truncate(time.Second)
	reply.Source, reply.DataAsOf = events.SourceLive, &now
	return reply, nil
}

// cmpTimeDesc orders later times first and missing times last.
func cmpTimeDesc(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return b.Compare(*a)
}

func wireDevice(d store.CachedDevice, matchedBy string) events.Device {
	return events.Device{
		CollectorUID: d.CollectorUID, Name: d.Name, Instance: d.Instance, Platform: d.Platform,
		OSName: d.OSName, OSVersion: d.OSVersion, HardwareType: d.HardwareType,
		HardwareManufacturer: d.HardwareManufacturer, HardwareModel: d.HardwareModel,
		LastSeen: utc(d.LastSeen), LastActivity: utc(d.LastActivity), ActivitySource: d.ActivitySource,
		User: d.User, MatchedBy: matchedBy,
	}
}

// liveDevice reads a row of a live identification query.
func liveDevice(row map[string]any, instance, matchedBy string) (events.Device, bool) {
	str := func(k string) string { s, _ := row[k].(string); return s }
	tm := func(k string) *time.Time {
		if t, ok := nexthink.ParseTime(row[k]); ok {
			return &t
		}
		return nil
	}
	d := events.Device{
		CollectorUID: strings.ToLower(str("device.collector.uid")), Name: str("device.name"), Instance: instance,
		Platform: str("device.operating_system.platform"), OSName: str("device.operating_system.name"),
		OSVersion: str("device.operating_system.version"), HardwareType: str("device.hardware.type"),
		HardwareManufacturer: str("device.hardware.manufacturer"), HardwareModel: str("device.hardware.model"),
		LastSeen: tm("device.last_seen"), LastActivity: tm("last_activity"), MatchedBy: matchedBy,
	}
	if d.LastActivity != nil {
		d.ActivitySource = "session"
	}
	return d, d.CollectorUID != "" && d.Name != ""
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// get answers one device by name or collector UID from the cache.
func (s *identifierService) get(ctx context.Context, req events.DevicesGetRequest) (events.DevicesGetReply, error) {
	if err := req.Validate(); err != nil {
		return events.DevicesGetReply{}, err
	}
	if err := s.takeCache(ctx); err != nil {
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
		LastLogonTime: utc(d.LastLogonTime), Fields: d.Fields, Users: []events.DeviceUser{},
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
			Name: o.Name, LastSeen: utc(o.LastSeen)})
	}
	return reply, nil
}
