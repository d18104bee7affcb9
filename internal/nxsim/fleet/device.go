package fleet

import (
	"fmt"
	"time"
)

// noActivity marks a user slot without activity in the retention period.
const noActivity = ^uint32(0)

// retention is how far back events go (Nexthink's default data retention).
const retention = 30 * 24 * time.Hour

// device is the compact state of one device (about 80 bytes). Times are stored as
// seconds before "now", so the fleet is a moving snapshot: a device last seen five
// minutes ago stays last seen five minutes ago however long nxsim runs. Everything
// else (names, UIDs, events) is derived from the fleet seed and the device index.
type device struct {
	lastSeenAgo uint32
	bootAgo     uint32
	loginAgo    uint32
	dcAgo       uint32 // last scheduled data collection, before the fleet's epoch
	users       [3]uint32
	activityAgo [3]uint32 // last activity per user slot, noActivity when none in 30 days
	freeMB      uint32    // system drive free space
	gpoApplied  uint16    // deciseconds
	gpoDC       uint16    // deciseconds
	capGB       uint16
	memGB       uint8
	os          uint8 // index in the platform's OS table
	model       uint8 // index in models
	nUsers      uint8
	office      uint8
	mac         bool
	outlookOff  bool
	plugin      uint8 // index in crashedPlugins
	oneDrive    uint8 // index in oneDriveStatuses
	startup     uint8 // index in startupProfiles
	spoolerStop bool
	stuckJobs   uint8
	printer     uint8
	entity      uint8
	crash       uint8 // index in crashProfiles
}

func (d *device) osInfo() osInfo {
	if d.mac {
		return macOS[d.os]
	}
	return windowsOS[d.os]
}

// Device is a public summary of one device.
type Device struct {
	Index        int
	Name         string
	CollectorUID string
	Platform     string
	Online       bool
	LastSeen     time.Time
}

// ago turns seconds before now into a time.
func ago(now time.Time, s uint32) time.Time { return now.Add(-time.Duration(s) * time.Second) }

// deviceName returns the name of device i.
func (f *Fleet) deviceName(i uint32) string {
	if int(i) < len(f.scenarios) {
		return f.scenarios[i].name
	}
	return fmt.Sprintf("%s-%06d", f.prefix, i)
}

// uuidFor formats a random-looking UUID that encodes idx: bytes 12..15 hold the
// permuted index, the rest derive from it, so the UUID decodes back to idx.
func (f *Fleet) uuidFor(salt uint64, idx uint32) string {
	p := permute32(idx, f.key^uint32(salt))
	hi := hash(f.seed, salt, uint64(p))
	mid := uint32(hash(f.seed, salt+1, uint64(p)))
	b := [16]byte{}
	for k := range 8 {
		b[k] = byte(hi >> (8 * k))
	}
	for k := range 4 {
		b[8+k] = byte(mid >> (8 * k))
		b[12+k] = byte(p >> (24 - 8*k))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// indexOfUUID decodes a UUID made by uuidFor, checking that it is the one uuidFor
// makes for the decoded index.
func (f *Fleet) indexOfUUID(salt uint64, s string, n int) (uint32, bool) {
	if len(s) != 36 {
		return 0, false
	}
	var p uint32
	for k := 28; k < 36; k++ {
		c := s[k]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		p = p<<4 | uint32(v)
	}
	idx := unpermute32(p, f.key^uint32(salt))
	if int(idx) >= n {
		return 0, false
	}
	if !equalFoldASCII(f.uuidFor(salt, idx), s) {
		return 0, false
	}
	return idx, true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := 0; k < len(a); k++ {
		x, y := a[k], b[k]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// UUID salts.
const (
	saltCollector uint64 = 1
	saltDeviceUID uint64 = 3
	saltUserUID   uint64 = 5
)
