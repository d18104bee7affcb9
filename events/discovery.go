package events

import "time"

// Type tokens of the discovery and status messages.
const (
	TypeDiscoveryRunRequest = "dexbridge.discovery.v1.run_request"
	TypeDiscoveryRunReply   = "dexbridge.discovery.v1.run_reply"
	TypeDiscoveryFinished   = "dexbridge.discovery.v1.finished"
	TypeStatusGetRequest    = "dexbridge.status.v1.get_request"
	TypeStatusGetReply      = "dexbridge.status.v1.get_reply"
)

// DiscoveryRunRequest asks for a discovery now, of one instance or (empty) of all.
type DiscoveryRunRequest struct {
	Header
	Instance string `json:"instance,omitempty"`
	// RequestedBy names who asked ("key:<id>"), for the logs.
	RequestedBy string `json:"requested_by,omitempty"`
}

// What became of a requested run.
const (
	RunStarted        = "started"
	RunAlreadyRunning = "already_running"
)

// DiscoveryRunReply says, per instance, whether a run started (it goes on in the
// background) or one was already running somewhere.
type DiscoveryRunReply struct {
	Header
	Runs []DiscoveryRunStart `json:"runs"`
}

// DiscoveryRunStart is the fate of one requested run.
type DiscoveryRunStart struct {
	Instance string `json:"instance"`
	Status   string `json:"status"`           // started or already_running
	RunID    int64  `json:"run_id,omitempty"` // when started
}

// DiscoveryFinishedEvent is published on DiscoveryFinished.<instance> after each run.
type DiscoveryFinishedEvent struct {
	Header
	Run DiscoveryRunInfo `json:"run"`
	Up  bool             `json:"up"` // the instance's health after the run
}

// DiscoveryRunInfo describes one discovery run of an instance.
type DiscoveryRunInfo struct {
	ID         int64      `json:"id"`
	Instance   string     `json:"instance"`
	Trigger    string     `json:"trigger"` // schedule, api or cli
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Outcome    string     `json:"outcome"` // running, success, failure, cancelled, abandoned
	Attempts   int        `json:"attempts"`
	Devices    *int64     `json:"devices"`
	Users      *int64     `json:"users"`
	Activities *int64     `json:"activities"`
	DataAsOf   *time.Time `json:"data_as_of"`
	Error      string     `json:"error,omitempty"`
}

// StatusGetRequest asks for the state of the instances and the cache.
type StatusGetRequest struct {
	Header
}

// StatusGetReply is the state of every configured instance and of the cache.
type StatusGetReply struct {
	Header
	Instances []InstanceStatus `json:"instances"`
	Cache     CacheSize        `json:"cache"` // totals
}

// InstanceStatus is one instance's health, discovery and cache.
type InstanceStatus struct {
	Name string `json:"name"`
	// State is up, down, or unknown (never discovered).
	State           string            `json:"state"`
	DownSince       *time.Time        `json:"down_since"`
	LastDiscovery   *DiscoveryRunInfo `json:"last_discovery"`
	LastSuccessAt   *time.Time        `json:"last_success_at"`
	DataAsOf        *time.Time        `json:"data_as_of"`
	NextDiscoveryAt *time.Time        `json:"next_discovery_at"`
	Cache           CacheSize         `json:"cache"`
	// Upstream is the configured instance's product: infinity or v6 (empty for an
	// instance no longer configured).
	Upstream string `json:"upstream,omitempty"`
	// Engines are every Engine of a V6 instance (configured, or listed by its
	// Portal) as the processes that call them last saw them; an Engine no call has
	// reached yet is unknown.
	Engines []EngineStatus `json:"engines,omitempty"`
}

// EngineStatus is the health of one Engine of a V6 instance: down after three
// failed calls in a row (or when the Portal lists it disconnected), up again as
// soon as it answers, unknown until a call reaches it.
type EngineStatus struct {
	Name                string     `json:"name"`
	State               string     `json:"state"` // up, down or unknown
	DownSince           *time.Time `json:"down_since,omitempty"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastError           string     `json:"last_error,omitempty"`
	ObservedAt          *time.Time `json:"observed_at"` // when a process last reported it; null while unknown
}

// CacheSize counts cached rows.
type CacheSize struct {
	Devices    int64 `json:"devices"`
	Users      int64 `json:"users"`
	Activities int64 `json:"activities"`
}
