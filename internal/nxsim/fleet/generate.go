// Package fleet generates a deterministic synthetic Nexthink fleet (devices, users,
// sessions, installed packages, performance events, crashes, alerts, data-collection
// remote-action outputs) and answers it as NQL tables.
//
// A fleet is a function of (seed, size, prefix): devices are compact structs, names and
// UIDs decode back to indices, and events are generated on the fly from per-device
// seeds, so 500 000 devices fit in a few tens of megabytes. Remote-action executions,
// remediation effects and alerts are the only state that changes after New.
package fleet

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Limits on the fleet size.
const (
	MinSize = 10
	MaxSize = 500_000
)

// Config says which fleet to generate.
type Config struct {
	Size      int    // number of devices, MinSize..MaxSize (raised to the scenario count)
	Seed      int64  // same seed and size, same fleet
	Prefix    string // device name prefix: generated devices are "<Prefix>-000123"
	Domain    string // user UPN and e-mail domain, default "example.com"
	Scenarios bool   // the first devices are the named scenario devices (PC-HEALTHY, ...)
	// Clock gives "now"; default time.Now. Device times are relative to it.
	Clock func() time.Time
}

// Fleet is a generated fleet. It is safe for concurrent use.
type Fleet struct {
	seed      uint64
	key       uint32
	prefix    string
	domain    string
	sidPrefix string
	clock     func() time.Time
	epoch     time.Time

	scenarios       []scenario
	scenarioUsers   []scenarioUser
	scenarioIdx     map[string]uint32
	scenarioUserIdx map[string]uint32
	lastNameIdx     map[string]int
	nUsers          int
	userDevOff      []uint32 // CSR: devices of user u are userDevs[userDevOff[u]:userDevOff[u+1]]
	userDevs        []uint32

	mu       sync.RWMutex
	devs     []device
	offline  map[uint32]bool // explicit online/offline overrides
	lastExec map[uint32]*deviceExecs
	execs    []*Execution
	byReq    map[string][]int
	alerts   []*Alert
}

// New generates the fleet.
func New(cfg Config) (*Fleet, error) {
	if cfg.Size < MinSize || cfg.Size > MaxSize {
		return nil, fmt.Errorf("fleet size %d: want %d to %d", cfg.Size, MinSize, MaxSize)
	}
	if cfg.Prefix == "" || strings.ContainsAny(cfg.Prefix, " \t") {
		return nil, fmt.Errorf("fleet prefix %q: want a non-empty name without spaces", cfg.Prefix)
	}
	if cfg.Domain == "" {
		cfg.Domain = "example.com"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	seed := mix64(uint64(cfg.Seed) ^ hash(0x6e78, prefixHash(cfg.Prefix)))
	f := &Fleet{
		seed:     seed,
		key:      uint32(hash(seed, 17)),
		prefix:   cfg.Prefix,
		domain:   cfg.Domain,
		clock:    cfg.Clock,
		offline:  map[uint32]bool{},
		lastExec: map[uint32]*deviceExecs{},
		byReq:    map[string][]int{},
	}
	f.epoch = f.now()
	f.sidPrefix = fmt.Sprintf("S-1-5-21-%d-%d-%d", 1_000_000_000+hash(seed, 21)%1_000_000_000,
		1_000_000_000+hash(seed, 22)%1_000_000_000, 1_000_000_000+hash(seed, 23)%1_000_000_000)
	f.lastNameIdx = make(map[string]int, len(lastNames))
	for k, n := range lastNames {
		f.lastNameIdx[n] = k
	}
	f.scenarioIdx = map[string]uint32{}
	f.scenarioUserIdx = map[string]uint32{}
	size := cfg.Size
	if cfg.Scenarios {
		f.scenarios, f.scenarioUsers = scenarios, scenarioUsers
		size = max(size, len(scenarios))
		for k, s := range scenarios {
			f.scenarioIdx[strings.ToLower(s.name)] = uint32(k)
		}
		for k, u := range scenarioUsers {
			f.scenarioUserIdx[u.name] = uint32(k)
		}
	}
	f.nUsers = max(size, len(f.scenarioUsers)+1)
	f.devs = make([]device, size)
	for i := range f.devs {
		if i < len(f.scenarios) {
			s := f.scenarios[i]
			d := healthy(s.user)
			s.apply(&d)
			// The device reported its last scheduled collection, so that was no later
			// than it was last seen.
			d.dcAgo = max(d.dcAgo, d.lastSeenAgo+3600)
			f.devs[i] = d
			continue
		}
		f.devs[i] = f.generate(uint32(i))
	}
	f.buildUserIndex()
	f.generateAlerts()
	return f, nil
}

func prefixHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for k := 0; k < len(s); k++ {
		h = (h ^ uint64(s[k])) * 1099511628211
	}
	return h
}

// now is the clock truncated to the second (NQL times have second precision).
func (f *Fleet) now() time.Time { return f.clock().Truncate(time.Second) }

// Size returns the number of devices.
func (f *Fleet) Size() int { return len(f.devs) }

// Users returns the number of users.
func (f *Fleet) Users() int { return f.nUsers }

// generate draws device i.
func (f *Fleet) generate(i uint32) device {
	r := rng{hash(f.seed, uint64(i))}
	var d device
	d.mac = r.chance(0.25)
	if d.mac {
		d.os = uint8(pickOS(&r, macOS))
		d.model = uint8(11 + r.intn(4))
		d.memGB = []uint8{16, 18, 36}[r.intn(3)]
	} else {
		d.os = uint8(pickOS(&r, windowsOS))
		switch p := r.float(); {
		case p < 0.65:
			d.model = uint8([]int{0, 1, 2, 3, 4, 5}[r.intn(6)])
		case p < 0.9:
			d.model = uint8(6 + r.intn(3))
		default:
			d.model = uint8(9 + r.intn(2))
		}
		d.memGB = []uint8{8, 16, 16, 32}[r.intn(4)]
	}
	d.capGB = []uint16{256, 512, 512, 1024}[r.intn(4)]
	if r.chance(0.04) {
		d.freeMB = uint32(r.between(2000, 6000))
	} else {
		d.freeMB = uint32(float64(d.capGB) * 1000 * (0.15 + 0.6*r.float()))
	}
	switch p := r.float(); {
	case p < 0.70:
		d.lastSeenAgo = uint32(r.between(0, 3600))
	case p < 0.90:
		d.lastSeenAgo = uint32(r.between(3600, 3*86400))
	case p < 0.98:
		d.lastSeenAgo = uint32(r.between(3*86400, 30*86400))
	default:
		d.lastSeenAgo = uint32(r.between(40*86400, 90*86400))
	}
	d.bootAgo = d.lastSeenAgo + uint32(r.between(1800, 9*86400))
	if r.chance(0.08) {
		d.bootAgo = d.lastSeenAgo + uint32(r.between(11*86400, 30*86400))
	}
	d.nUsers = 1
	if p := r.float(); p < 0.08 {
		d.nUsers = 3
	} else if p < 0.30 {
		d.nUsers = 2
	}
	d.users[0] = i
	lo := len(f.scenarioUsers)
	for k := 1; k < int(d.nUsers); k++ {
		u := uint32(lo + r.intn(f.nUsers-lo))
		for u == d.users[0] || (k == 2 && u == d.users[1]) {
			u = uint32(lo + (int(u)-lo+1)%(f.nUsers-lo))
		}
		d.users[k] = u
	}
	inactive := r.chance(0.03) || d.lastSeenAgo > 30*86400
	for k := range d.activityAgo {
		d.activityAgo[k] = noActivity
	}
	if inactive {
		d.loginAgo = max(d.lastSeenAgo, 30*86400) + uint32(r.between(86400, 30*86400))
	} else {
		d.activityAgo[0] = d.lastSeenAgo + uint32(r.between(0, 7200))
		for k := 1; k < int(d.nUsers); k++ {
			a := d.activityAgo[0] + uint32(r.between(3600, 25*86400))
			if a < 30*86400 {
				d.activityAgo[k] = a
			}
		}
		d.loginAgo = min(d.bootAgo, d.activityAgo[0]+uint32(r.between(0, 3*3600)))
	}
	d.dcAgo = d.lastSeenAgo + uint32(r.between(600, 20*3600))
	d.entity = uint8(r.intn(len(entities)))
	d.printer = uint8(r.intn(len(printers)))
	if r.chance(0.1) {
		d.crash = uint8(1 + r.intn(len(crashProfiles)-1))
	}
	if d.mac {
		d.office = officeNone
		return d
	}
	switch p := r.float(); {
	case p < 0.85:
		d.office = office365
	case p < 0.93:
		d.office = office2016
	case p < 0.96:
		d.office = officeOutdated
	default:
		d.office = officeNone
	}
	d.outlookOff = r.chance(0.03)
	if r.chance(0.04) {
		d.plugin = uint8(1 + r.intn(len(crashedPlugins)-1))
	}
	if r.chance(0.05) {
		d.oneDrive = uint8(1 + r.intn(len(oneDriveStatuses)-1))
	}
	if r.chance(0.08) {
		d.startup = uint8(1 + r.intn(len(startupProfiles)-1))
	}
	d.gpoApplied, d.gpoDC = uint16(r.between(5, 25)), uint16(r.between(1, 8))
	if r.chance(0.05) {
		d.gpoApplied, d.gpoDC = uint16(r.between(60, 150)), uint16(r.between(20, 60))
	}
	d.spoolerStop = r.chance(0.03)
	if r.chance(0.05) {
		d.stuckJobs = uint8(r.between(1, 6))
	}
	return d
}

func pickOS(r *rng, list []osInfo) int {
	total := 0
	for _, o := range list {
		total += o.weight
	}
	n := r.intn(total)
	for k, o := range list {
		if n < o.weight {
			return k
		}
		n -= o.weight
	}
	return 0
}

// buildUserIndex fills the user -> devices CSR index.
func (f *Fleet) buildUserIndex() {
	counts := make([]uint32, f.nUsers+1)
	for i := range f.devs {
		d := &f.devs[i]
		for k := 0; k < int(d.nUsers); k++ {
			counts[d.users[k]+1]++
		}
	}
	for u := 1; u <= f.nUsers; u++ {
		counts[u] += counts[u-1]
	}
	f.userDevOff = counts
	f.userDevs = make([]uint32, counts[f.nUsers])
	next := make([]uint32, f.nUsers)
	copy(next, counts[:f.nUsers])
	for i := range f.devs {
		d := &f.devs[i]
		for k := 0; k < int(d.nUsers); k++ {
			u := d.users[k]
			f.userDevs[next[u]] = uint32(i)
			next[u]++
		}
	}
}
