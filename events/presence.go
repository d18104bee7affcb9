package events

import "time"

// A device's presence, from when Nexthink last heard from it: what a chatbot may say
// ("your laptop seems to be off") and whether waiting for the device makes sense.
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
	PresenceUnknown = "unknown" // Nexthink never reported the device, or the data is too old to tell
)

// PresenceAt is the presence at now of a device last seen at lastSeen (nil: never),
// online when seen within onlineWithin.
func PresenceAt(lastSeen *time.Time, now time.Time, onlineWithin time.Duration) string {
	switch {
	case lastSeen == nil || lastSeen.IsZero():
		return PresenceUnknown
	case now.Sub(*lastSeen) <= onlineWithin:
		return PresenceOnline
	}
	return PresenceOffline
}

// PresenceAsOf is the presence at now of a device last seen at lastSeen, from data
// read at asOf (the cache's last discovery): a device that was online when the data
// was read, but whose data is now too old to say whether it still is, is unknown
// rather than offline.
func PresenceAsOf(lastSeen *time.Time, asOf, now time.Time, onlineWithin time.Duration) string {
	p := PresenceAt(lastSeen, now, onlineWithin)
	if p == PresenceOffline && !asOf.IsZero() && asOf.Sub(*lastSeen) <= onlineWithin {
		return PresenceUnknown
	}
	return p
}
