package events

import "time"

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
	// LastActivity is the employee's last interaction with the device (for a device
	// looked up by name or UID: any user's); ActivitySource says whether it comes from
	// session activity ("session") or the device's last logon ("last_logon").
	LastActivity   *time.Time `json:"last_activity"`
	ActivitySource string     `json:"activity_source,omitempty"`
	User           string     `json:"user,omitempty"` // whose activity LastActivity is
	MatchedBy      string     `json:"matched_by"`     // the key that matched
}

// DevicesGetRequest asks for one device by name or collector UID.
type DevicesGetRequest struct {
	Header
	Device string `json:"device"`
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
}
