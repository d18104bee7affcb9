// Package livedevices finds employees' devices, or a device, on the Nexthink
// instances themselves, for when the cache does not know an identifier: every
// instance not known to be down is asked at once, each within its NQL rate limit,
// with the saved queries of the identification key (config/queries.yaml).
// Identification and the diagnosis's device resolution both fall back to it.
//
// The saved queries that look a user up select QueryWindow of activity; a shorter
// USER_ACTIVITY_PERIOD (Period) is applied here to their rows. The queries by device
// name or collector UID have no timeframe on devices, so they find a device long
// unseen for as long as Nexthink keeps it.
package livedevices

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// MaxDevices bounds an answer: an employee has a handful of devices.
const MaxDevices = 50

// QueryWindow is the timeframe of the saved queries that look users up: the default
// USER_ACTIVITY_PERIOD. NQL parameters replace values, not timeframes, so the saved
// text states it; a longer period needs the saved queries widened.
const QueryWindow = 30 * 24 * time.Hour

// Health tells which instances are down (store.DB).
type Health interface {
	InstancesHealth(ctx context.Context) ([]store.InstanceHealth, error)
}

// Live runs a saved query on one instance (nexthink.Client).
type Live interface {
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
}

// Memory remembers which instances did not know an identifier (store.DB), shared by
// every replica.
type Memory interface {
	UnknownOn(ctx context.Context, key, value string) (map[string]time.Time, error)
	RememberUnknown(ctx context.Context, key, value string, instances []string, checkedAt time.Time, ttl time.Duration) error
}

// Instance is a configured instance and how to ask it.
type Instance struct {
	Name string
	Live Live
}

// savedQuery is a saved query and the parameter it takes.
type savedQuery struct{ id, param string }

// queries are the saved query of each attribute a look-up compares (the
// identification keys; events.UserMatches says which a user identifier tries).
var queries = map[string]savedQuery{
	events.KeyUsername:     {"#get_device_basic_infos", "username"},
	events.KeyUPN:          {"#get_device_basic_infos_by_upn", "upn"},
	events.KeyEmail:        {"#get_device_basic_infos_by_email", "email"},
	events.KeySID:          {"#get_device_basic_infos_by_sid", "sid"},
	events.KeyDeviceName:   {"#get_device_basic_infos_by_device_name", "device_name"},
	events.KeyCollectorUID: {"#get_device_basic_infos_by_collector_uid", "collector_uid"},
}

// Finder asks the instances.
type Finder struct {
	health    Health
	instances []Instance // in configuration order
	period    time.Duration
	memory    Memory
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// Option tunes a Finder.
type Option func(*Finder)

// Period is USER_ACTIVITY_PERIOD: a user look-up leaves out devices whose last
// activity (else last sighting) is older. Without it, QueryWindow is the period.
func Period(d time.Duration) Option { return func(f *Finder) { f.period = d } }

// RememberUnknown makes the finder remember, for ttl, which instances did not know
// an identifier, and not ask them again meanwhile. ttl <= 0 remembers nothing.
func RememberUnknown(m Memory, ttl time.Duration) Option {
	return func(f *Finder) { f.memory, f.ttl = m, ttl }
}

// Tuning is a deployment's configuration of live look-ups. Identification, the
// diagnosis's device lookup and the remote actions' all build their finder from it
// (Tuned), so every one applies USER_ACTIVITY_PERIOD and answers an identifier the
// instances did not know a moment ago at once, without asking them again.
type Tuning struct {
	// Period is USER_ACTIVITY_PERIOD (see Period).
	Period time.Duration
	// UnknownTTL is cache.unknown_identifier_ttl (see RememberUnknown).
	UnknownTTL time.Duration
}

// TuningFrom is the live look-ups' part of a process's configuration.
func TuningFrom(c config.Config) Tuning {
	return Tuning{Period: c.Cache.UserActivityPeriod.D(), UnknownTTL: c.Cache.UnknownIdentifierTTL.D()}
}

// Tuned applies t, with m as the memory of unknown identifiers shared by every
// replica and service.
func Tuned(t Tuning, m Memory) Option {
	return func(f *Finder) {
		if t.Period > 0 {
			Period(t.Period)(f)
		}
		RememberUnknown(m, t.UnknownTTL)(f)
	}
}

// Log is where a finder logs what it cannot tell its caller (a memory that fails).
func Log(l *slog.Logger) Option { return func(f *Finder) { f.log = l } }

// New returns a finder over instances, which health says are up or down.
func New(health Health, instances []Instance, opts ...Option) *Finder {
	f := &Finder{health: health, instances: instances, period: QueryWindow, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Query is what to look for: an identification key and its value (checked by
// events.CheckIdentifier), on one instance or ("") on every one.
type Query struct {
	Key, Value string
	Instance   string
}

// Answer is what the instances said.
type Answer struct {
	// Devices are most recently active first (then most recently seen), at most
	// MaxDevices; each says what matched, and for a user name, the user.
	Devices []events.Device
	// Asked is false when there was no instance to ask (every one down).
	Asked bool
	// AsOf is when the instances answered: the oldest answer remembered when every
	// instance was known not to know the identifier, else now.
	AsOf time.Time
}

// Find is Lookup on every instance, for callers that need only the devices.
func (f *Finder) Find(ctx context.Context, key, value string) (devices []events.Device, asked bool, err error) {
	a, err := f.Lookup(ctx, Query{Key: key, Value: value})
	return a.Devices, a.Asked, err
}

// Lookup asks every instance not known to be down, and not known to lack the
// identifier, at once. A user identifier tries each of its events.UserMatches in
// turn on each instance, until one finds devices. Instances that fail are left out;
// when every one asked failed, the first failure is the answer.
func (f *Finder) Lookup(ctx context.Context, q Query) (Answer, error) {
	tries := events.UserMatches(q.Key, q.Value)
	user := tries != nil
	if !user {
		tries = []events.UserMatch{{Key: q.Key, Value: q.Value, MatchedBy: q.Key}}
	}
	for _, t := range tries {
		if _, ok := queries[t.Key]; !ok {
			return Answer{}, fmt.Errorf("live identification: unknown key %q", t.Key)
		}
	}
	health, err := f.health.InstancesHealth(ctx)
	if err != nil {
		return Answer{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	down := map[string]bool{}
	for _, h := range health {
		down[h.Name] = !h.Up
	}
	known := f.remembered(ctx, q)
	now := f.now().UTC().Truncate(time.Second)
	var targets []Instance
	var oldest time.Time
	for _, in := range f.instances {
		switch at, unknown := known[in.Name]; {
		case down[in.Name] || (q.Instance != "" && in.Name != q.Instance):
		case unknown:
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		default:
			targets = append(targets, in)
		}
	}
	if len(targets) == 0 {
		return Answer{Devices: []events.Device{}, Asked: !oldest.IsZero(), AsOf: oldest.UTC()}, nil
	}
	type answer struct {
		devices []events.Device
		err     error
	}
	answers := make([]answer, len(targets))
	var wg sync.WaitGroup
	for k, in := range targets {
		wg.Go(func() {
			answers[k].devices, answers[k].err = f.ask(ctx, in, tries, user)
		})
	}
	wg.Wait()
	var firstErr error
	var devices []events.Device
	var unknown []string
	ok := false
	for k, a := range answers {
		if a.err != nil {
			firstErr = cmp.Or(firstErr, a.err)
			continue
		}
		ok = true
		if len(a.devices) == 0 {
			unknown = append(unknown, targets[k].Name)
		}
		devices = append(devices, a.devices...)
	}
	if !ok {
		return Answer{}, nexthink.Problem(firstErr)
	}
	f.remember(ctx, q, unknown, now)
	slices.SortStableFunc(devices, func(a, b events.Device) int {
		if c := cmpTimeDesc(a.LastActivity, b.LastActivity); c != 0 {
			return c
		}
		return cmpTimeDesc(a.LastSeen, b.LastSeen)
	})
	if len(devices) > MaxDevices {
		devices = devices[:MaxDevices]
	}
	if devices == nil {
		devices = []events.Device{}
	}
	return Answer{Devices: devices, Asked: true, AsOf: now}, nil
}

// ask tries each match on one instance until one finds devices.
func (f *Finder) ask(ctx context.Context, in Instance, tries []events.UserMatch, user bool) ([]events.Device, error) {
	cutoff := f.now().Add(-f.period)
	for _, t := range tries {
		q := queries[t.Key]
		res, err := in.Live.Execute(ctx, q.id, map[string]string{q.param: t.Value})
		if err != nil {
			return nil, err
		}
		var out []events.Device
		for _, row := range res.Rows {
			d, ok := liveDevice(row, in.Name, t.MatchedBy)
			if !ok || (user && f.period > 0 && activeBefore(d, cutoff)) {
				continue
			}
			if t.Key == events.KeyUsername {
				d.User = t.Value
			}
			out = append(out, d)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

// activeBefore reports whether d's last activity (else its last sighting) is before
// cutoff; a device with neither is kept.
func activeBefore(d events.Device, cutoff time.Time) bool {
	at := cmp.Or(d.LastActivity, d.LastSeen)
	return at != nil && at.Before(cutoff)
}

// remembered is when each instance said it did not know q, if recently enough.
func (f *Finder) remembered(ctx context.Context, q Query) map[string]time.Time {
	if f.memory == nil || f.ttl <= 0 {
		return nil
	}
	known, err := f.memory.UnknownOn(ctx, q.Key, q.Value)
	if err != nil {
		// Asking the instances again is the safe side of a memory that fails.
		f.log.Warn("unknown identifiers not read: asking the instances", "err", err)
		return nil
	}
	return known
}

func (f *Finder) remember(ctx context.Context, q Query, instances []string, at time.Time) {
	if f.memory == nil || f.ttl <= 0 || len(instances) == 0 {
		return
	}
	if err := f.memory.RememberUnknown(ctx, q.Key, q.Value, instances, at, f.ttl); err != nil {
		f.log.Warn("unknown identifier not remembered", "instances", strings.Join(instances, ","), "err", err)
	}
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

// liveDevice reads a row of a live identification query.
func liveDevice(row map[string]any, instance, matchedBy string) (events.Device, bool) {
	str := func(k string) string { s, _ := row[k].(string); return s }
	tm := func(k string) *time.Time {
		if t, ok := parseTime(row[k]); ok {
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

// timeLayouts are the date-time forms a live row may carry: the NQL API's
// ("2026-11-30 19:58:58", UTC since the client asks for UTC times), the same with a
// T, and RFC 3339 with a zone or offset (a wrapper that already normalized them).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// parseTime reads a date-time of a live row, always in UTC: identification answers
// RFC 3339 UTC whatever form the tenant sent.
func parseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), !x.IsZero()
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}
