package events

import (
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// Type tokens of the identification messages.
const (
	TypeDevicesIdentifyRequest = "dexbridge.devices.v1.identify_request"
	TypeDevicesIdentifyReply   = "dexbridge.devices.v1.identify_reply"
	TypeDevicesGetRequest      = "dexbridge.devices.v1.get_request"
	TypeDevicesGetReply        = "dexbridge.devices.v1.get_reply"
)

// The keys an employee or a device is identified by.
const (
	KeyUsername     = "username"
	KeyUPN          = "upn"
	KeyEmail        = "email"
	KeySID          = "sid"
	KeyDeviceName   = "device_name"
	KeyCollectorUID = "collector_uid"
)

// MatchedByUsernameWithoutDomain says a user name given as DOMAIN\user matched the
// user name alone. The other matched_by values are the identification keys: a user
// name given as user@domain may match as a UPN (KeyUPN).
const MatchedByUsernameWithoutDomain = "username_without_domain"

// IdentifierKeys lists the identification keys, users' first.
func IdentifierKeys() []string {
	return []string{KeyUsername, KeyUPN, KeyEmail, KeySID, KeyDeviceName, KeyCollectorUID}
}

// Where identification found its answer.
const (
	SourceCache = "cache"
	SourceLive  = "live"
)

// DevicesIdentifyRequest asks for the devices of an employee (by user name, UPN,
// e-mail address or SID) or for a device (by name or collector UID). The value has
// been checked for its key's format.
type DevicesIdentifyRequest struct {
	Header
	Key   string `json:"key"`
	Value string `json:"value"`
	// Instance, when set, narrows the search to that configured instance.
	Instance string `json:"instance,omitempty"`
}

// DevicesIdentifyReply lists the devices found, most recently active first.
type DevicesIdentifyReply struct {
	Header
	Devices []Device `json:"devices"`
	Source  string   `json:"source"` // cache or live
	// DataAsOf is when the answer's data was read from Nexthink: the oldest refresh of
	// the cached instances consulted, or the time of the live queries. Null when no
	// instance has been discovered yet.
	DataAsOf *time.Time `json:"data_as_of"`
	// People groups the devices per person (a user of one instance), for the user
	// keys; absent for the device keys.
	People []Person `json:"people,omitempty"`
	// Ambiguous says the identifier matched more than one person (users of several
	// instances with different SIDs, or several users of one instance): Devices then
	// mixes their devices, and the chatbot should ask who the employee is (People's
	// full names) and narrow the search with the instance.
	Ambiguous bool `json:"ambiguous"`
}

// Person is one user an identifier matched, on one instance, with their devices.
type Person struct {
	Instance  string   `json:"instance"`
	User      string   `json:"user,omitempty"`      // the user name, when known
	FullName  string   `json:"full_name,omitempty"` // user.ad.full_name, when known
	UPN       string   `json:"upn,omitempty"`
	MatchedBy string   `json:"matched_by"`
	Devices   []Device `json:"devices"`
}

// Device is a device as identification returns it.
type Device struct {
	CollectorUID         string     `json:"collector_uid"`
	Name                 string     `json:"name"`
	Instance             string     `json:"instance"`
	Platform             string     `json:"platform,omitempty"`
	OSName               string     `json:"os_name,omitempty"`
	OSVersion            string     `json:"os_version,omitempty"`
	HardwareType         string     `json:"hardware_type,omitempty"`
	HardwareManufacturer string     `json:"hardware_manufacturer,omitempty"`
	HardwareModel        string     `json:"hardware_model,omitempty"`
	LastSeen             *time.Time `json:"last_seen"`
	// Presence is online, offline or unknown, from LastSeen (PresenceAt).
	Presence string `json:"presence,omitempty"`
	// LastActivity is the employee's last interaction with the device (for a device
	// looked up by name or UID: any user's); ActivitySource says whether it comes from
	// session activity ("session") or the device's last logon ("last_logon").
	LastActivity   *time.Time `json:"last_activity"`
	ActivitySource string     `json:"activity_source,omitempty"`
	User           string     `json:"user,omitempty"`           // whose activity LastActivity is
	UserFullName   string     `json:"user_full_name,omitempty"` // that user's full name, when known
	// MatchedBy is what matched: the key, or MatchedByUsernameWithoutDomain, or KeyUPN
	// for a user name given as user@domain.
	MatchedBy string `json:"matched_by"`
}

// DevicesGetRequest asks for one device by name or collector UID.
type DevicesGetRequest struct {
	Header
	Device string `json:"device"`
	// Instance, when set, narrows the search to that configured instance.
	Instance string `json:"instance,omitempty"`
}

// DevicesGetReply is one cached device with its cached fields.
type DevicesGetReply struct {
	Header
	Device DeviceDetail `json:"device"`
	// OtherMatches are the other devices of that name (on other instances): the one
	// returned is the most recently seen.
	OtherMatches []DeviceRef `json:"other_matches,omitempty"`
	Source       string      `json:"source"`
	DataAsOf     *time.Time  `json:"data_as_of"`
}

// DeviceDetail is a device with its cached fields (keyed by fully qualified NQL
// names) and its recent users.
type DeviceDetail struct {
	Device
	UID           string         `json:"uid,omitempty"`
	LastLogonUser string         `json:"last_logon_user,omitempty"`
	LastLogonTime *time.Time     `json:"last_logon_time,omitempty"`
	Fields        map[string]any `json:"fields"`
	Users         []DeviceUser   `json:"users"`
}

// DeviceUser is a user's latest activity on a device.
type DeviceUser struct {
	Name         string    `json:"name"`
	FullName     string    `json:"full_name,omitempty"`
	UPN          string    `json:"upn,omitempty"`
	LastActivity time.Time `json:"last_activity"`
	Source       string    `json:"source"`
}

// DeviceRef points at a device.
type DeviceRef struct {
	Instance     string     `json:"instance"`
	CollectorUID string     `json:"collector_uid"`
	Name         string     `json:"name"`
	LastSeen     *time.Time `json:"last_seen"`
	Presence     string     `json:"presence,omitempty"`
}

// UserMatch is one way a user identifier may match a user: the attribute compared
// (KeyUsername, KeyUPN, KeyEmail or KeySID), the value, and what an answer says matched.
type UserMatch struct {
	Key       string
	Value     string
	MatchedBy string
}

// UserMatches lists, most precise first, how a user identifier may match. A user name
// matches as given first, since a tenant may store names with their domain; then
// DOMAIN\user matches the user name alone (the form Windows logons show, where the
// tenant stores the name without it), and user@domain the UPN (the form Azure AD and
// chatbot platforms know). The other user keys match themselves; a device key
// matches no user (nil). value has passed CheckIdentifier.
func UserMatches(key, value string) []UserMatch {
	switch key {
	case KeyUPN, KeyEmail, KeySID:
		return []UserMatch{{key, value, key}}
	case KeyUsername:
	default:
		return nil
	}
	out := []UserMatch{{KeyUsername, value, KeyUsername}}
	if _, user, ok := strings.Cut(value, `\`); ok {
		out = append(out, UserMatch{KeyUsername, user, MatchedByUsernameWithoutDomain})
	} else if strings.Contains(value, "@") {
		out = append(out, UserMatch{KeyUPN, value, KeyUPN})
	}
	return out
}

var (
	// windowsDomainPattern is the DOMAIN of DOMAIN\user (a NetBIOS or DNS name).
	windowsDomainPattern = runesMatching(`^[\p{L}\p{N}][\p{L}\p{N}._-]*$`, 255)
	// bareUserPattern is a user name without a domain.
	bareUserPattern = runesMatching(`^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._'$+-]*$`, 256)
)

// checkUsernameForm checks the domain part of a user name written DOMAIN\user or
// user@domain: one separator, a user on one side, a well-formed domain on the other.
func checkUsernameForm(value string) error {
	const want = `a user name such as jdoe, CORP\jdoe or jdoe@example.com`
	backslashes, ats := strings.Count(value, `\`), strings.Count(value, "@")
	switch {
	case backslashes+ats == 0:
		return nil
	case backslashes+ats > 1:
		return problem.InvalidField(KeyUsername, "want %s: one \\ or one @ at most", want)
	case backslashes == 1:
		domain, user, _ := strings.Cut(value, `\`)
		if !windowsDomainPattern.MatchString(domain) || !bareUserPattern.MatchString(user) {
			return problem.InvalidField(KeyUsername, "want %s", want)
		}
	default:
		if !identifierFormats[KeyUPN].re.MatchString(value) {
			return problem.InvalidField(KeyUsername, "want %s", want)
		}
	}
	return nil
}
