// Package livedevices finds employees' devices, or a device, on the Nexthink
// instances themselves, for when the cache does not know an identifier: every
// instance not known to be down is asked at once, each within its NQL rate limit,
// with the saved query of the identification key (config/queries.yaml).
// Identification and the diagnosis's device resolution both fall back to it.
package livedevices

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
)

// MaxDevices bounds an answer: an employee has a handful of devices.
const MaxDevices = 50

// Health tells which instances are down (store.DB).
type Health interface {
	InstancesHealth(ctx context.Context) ([]store.InstanceHealth, error)
}

// Live runs a saved query on one instance (nexthink.Client).
type Live interface {
	Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error)
}

// Instance is a configured instance and how to ask it.
type Instance struct {
	Name string
	Live Live
}

// queries are the saved query each identification key asks, and its parameter.
var queries = map[string]struct{ query, param string }{
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
}

// New returns a finder over instances, which health says are up or down.
func New(health Health, instances []Instance) *Finder {
	return &Finder{health: health, instances: instances}
}

// Find asks every instance not known to be down, at once, for the devices value
// identifies by key, and returns them most recently active first (then most recently
// seen), at most MaxDevices. asked is false when there was no instance to ask.
// Instances that fail are left out; when every one failed, the first failure is the
// answer.
func (f *Finder) Find(ctx context.Context, key, value string) (devices []events.Device, asked bool, err error) {
	q, ok := queries[key]
	if !ok {
		return nil, false, fmt.Errorf("live identification: unknown key %q", key)
	}
	health, err := f.health.InstancesHealth(ctx)
	if err != nil {
		return nil, false, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	down := map[string]bool{}
	for _, h := range health {
		down[h.Name] = !h.Up
	}
	var targets []Instance
	for _, in := range f.instances {
		if !down[in.Name] {
			targets = append(targets, in)
		}
	}
	if len(targets) == 0 {
		return nil, false, nil
	}
	type answer struct {
		devices []events.Device
		err     error
	}
	answers := make([]answer, len(targets))
	var wg sync.WaitGroup
	for k, in := range targets {
		wg.Go(func() {
			res, err := in.Live.Execute(ctx, q.query, map[string]string{q.param: value})
			if err != nil {
				answers[k].err = err
				return
			}
			for _, row := range res.Rows {
				if d, ok := liveDevice(row, in.Name, key); ok {
					answers[k].devices = append(answers[k].devices, d)
				}
			}
		})
	}
	wg.Wait()
	var firstErr error
	ok = false
	for _, a := range answers {
		if a.err != nil {
			firstErr = cmp.Or(firstErr, a.err)
			continue
		}
		ok = true
		devices = append(devices, a.devices...)
	}
	if !ok {
		return nil, true, nexthink.Problem(firstErr)
	}
	slices.SortStableFunc(devices, func(a, b events.Device) int {
		if c := cmpTimeDesc(a.LastActivity, b.LastActivity); c != 0 {
			return c
		}
		return cmpTimeDesc(a.LastSeen, b.LastSeen)
	})
	if len(devices) > MaxDevices {
		devices = devices[:MaxDevices]
	}
	return devices, true, nil
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
