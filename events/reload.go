package events

import "time"

// Type tokens of the topic reload messages.
const (
	TypeTopicsReloadRequest = "dexbridge.topics.v1.reload_request"
	TypeTopicsReloadReply   = "dexbridge.topics.v1.reload_reply"
)

// What a topics worker did with a reload request.
const (
	ReloadReloaded = "reloaded" // the new set is in force
	ReloadRefused  = "refused"  // the new set has problems; the previous one stays in force
)

// TopicsReloadRequest asks every topics worker to reload its topics, remote-action
// allow-list and saved queries from its files. It is broadcast: each replica answers.
type TopicsReloadRequest struct {
	Header
	// RequestedBy names who asked ("key:<id>", "signal"), for the logs.
	RequestedBy string `json:"requested_by,omitempty"`
}

// TopicsReloadReply is one worker's answer.
type TopicsReloadReply struct {
	Header
	Worker string `json:"worker"` // the replica: its NATS service instance id
	Status string `json:"status"` // reloaded or refused
	// Problems are why a refused set was refused, each naming its file and path.
	Problems []string `json:"problems,omitempty"`
	// Topics and Queries count the set in force after the request; LoadedAt is when
	// that set was loaded.
	Topics   int       `json:"topics"`
	Queries  int       `json:"queries"`
	LoadedAt time.Time `json:"loaded_at"`
}
