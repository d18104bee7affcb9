package fleet

import (
	"math/rand/v2"
	"time"
)

// Presence classes a sample can ask for, by how long ago a device was last seen.
const (
	PresenceOnline     = "online"      // seen within the last hour (or forced online)
	PresenceOffline    = "offline"     // not online, seen within the last 7 days
	PresenceLongUnseen = "long_unseen" // last seen more than 7 days ago
)

// longUnseenAfter separates offline devices from long-unseen ones.
const longUnseenAfter = 7 * 24 * time.Hour

// SampleFilter says which devices a Sample may return; empty fields match any.
type SampleFilter struct {
	Platform         string // "Windows" or "macOS"
	Presence         string // one of the Presence constants
	IncludeScenarios bool   // the named scenario devices are left out unless asked for
}

// Presence classifies device d as a chatbot would see it.
func (f *Fleet) Presence(d Device) string {
	switch {
	case d.Online:
		return PresenceOnline
	case f.now().Sub(d.LastSeen) > longUnseenAfter:
		return PresenceLongUnseen
	}
	return PresenceOffline
}

// Sample picks up to n distinct devices matching filter, in an order drawn from rng, so
// that tests meet ordinary fleet devices, reproducibly for a given seed.
func (f *Fleet) Sample(rng *rand.Rand, n int, filter SampleFilter) []Device {
	var out []Device
	for _, i := range rng.Perm(len(f.devs)) {
		if len(out) == n {
			break
		}
		if !filter.IncludeScenarios && i < len(f.scenarios) {
			continue
		}
		d := f.Device(i)
		if filter.Platform != "" && d.Platform != filter.Platform {
			continue
		}
		if filter.Presence != "" && f.Presence(d) != filter.Presence {
			continue
		}
		out = append(out, d)
	}
	return out
}

// User is a public summary of one user.
type User struct {
	Index    int
	Name     string
	UPN      string
	SID      string
	FullName string
}

// UserOf returns the summary of user u.
func (f *Fleet) UserOf(u int) User {
	return User{Index: u, Name: f.userName(uint32(u)), UPN: f.userUPN(uint32(u)), SID: f.userSID(uint32(u)),
		FullName: f.userFullName(uint32(u))}
}
