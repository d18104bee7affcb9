package events

import "time"

// A device's presence, from when Nexthink last heard from it: what a chatbot may say
// ("your laptop seems to be off") and whether waiting for the device makes sense.
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
	PresenceUnknown = "unknown" // Nexthink never reported the device
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
