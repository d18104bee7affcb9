package fleet

import (
	"strconv"
	"strings"
	"time"
)

// onlineAfter is how recently a device must have been seen to count as online.
const onlineAfter = 3600

// Online reports whether device i is connected: an explicit SetOnline wins, else a
// device seen in the last hour is online.
func (f *Fleet) Online(i int) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.onlineLocked(uint32(i))
}

func (f *Fleet) onlineLocked(i uint32) bool {
	if on, ok := f.offline[i]; ok {
		return !on
	}
	return f.devs[i].lastSeenAgo <= onlineAfter
}

// SetOnline forces device i online (last seen now) or offline (last seen at least two
// hours ago). A device taken offline reported nothing since it was last seen: its
// collections are moved back before then.
func (f *Fleet) SetOnline(i int, online bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offline[uint32(i)] = !online
	d := &f.devs[i]
	if online {
		d.lastSeenAgo = 30
		return
	}
	d.lastSeenAgo = max(d.lastSeenAgo, 2*3600)
	d.dcAgo = max(d.dcAgo, d.lastSeenAgo+600)
	cur := f.lastExec[uint32(i)]
	if cur == nil {
		return
	}
	seen := ago(f.now(), d.lastSeenAgo)
	for k, le := range cur {
		if le != nil && le.status == StatusSuccess && le.time.After(seen) {
			f.setDataExecLocked(uint32(i), k, &lastExec{le.status, le.details, seen.Add(-10 * time.Minute)})
		}
	}
}

// DeviceByName returns the index of the device called name (case-insensitive).
func (f *Fleet) DeviceByName(name string) (int, bool) {
	if i, ok := f.scenarioIdx[strings.ToLower(name)]; ok {
		return int(i), true
	}
	p := len(f.prefix)
	if len(name) < p+2 || !strings.EqualFold(name[:p], f.prefix) || name[p] != '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(name[p+1:], 10, 32)
	if err != nil || int(n) < len(f.scenarios) || int(n) >= len(f.devs) {
		return 0, false
	}
	if !strings.EqualFold(f.deviceName(uint32(n)), name) {
		return 0, false
	}
	return int(n), true
}

// DeviceByCollectorUID returns the index of the device with that collector UID.
func (f *Fleet) DeviceByCollectorUID(uid string) (int, bool) {
	i, ok := f.indexOfUUID(saltCollector, uid, len(f.devs))
	return int(i), ok
}

// Device returns a summary of device i.
func (f *Fleet) Device(i int) Device {
	f.mu.RLock()
	d := f.devs[i]
	online := f.onlineLocked(uint32(i))
	f.mu.RUnlock()
	return Device{
		Index:        i,
		Name:         f.deviceName(uint32(i)),
		CollectorUID: f.uuidFor(saltCollector, uint32(i)),
		Platform:     d.osInfo().platform,
		Online:       online,
		LastSeen:     ago(f.now(), d.lastSeenAgo),
	}
}

// ScenarioNames returns the names of the scenario devices, in index order.
func (f *Fleet) ScenarioNames() []string {
	out := make([]string, len(f.scenarios))
	for k, s := range f.scenarios {
		out[k] = s.name
	}
	return out
}

// snapshot copies device i and its data-collection executions.
func (f *Fleet) snapshot(i uint32) (device, *deviceExecs) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.devs[i], f.lastExec[i]
}

// DevicesOfUser returns the indices of the devices that the user of a users row
// of this fleet has used, nil for any other row.
func (f *Fleet) DevicesOfUser(r Row) []int {
	ur, ok := r.(*userRow)
	if !ok || ur.f != f {
		return nil
	}
	devs := f.userDevs[f.userDevOff[ur.u]:f.userDevOff[ur.u+1]]
	out := make([]int, len(devs))
	for k, i := range devs {
		out[k] = int(i)
	}
	return out
}
