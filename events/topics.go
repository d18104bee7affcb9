package events

// Type tokens of the topic catalogue messages.
const (
	TypeTopicsListRequest = "dexbridge.topics.v1.list_request"
	TypeTopicsListReply   = "dexbridge.topics.v1.list_reply"
	TypeTopicsGetRequest  = "dexbridge.topics.v1.get_request"
	TypeTopicsGetReply    = "dexbridge.topics.v1.get_reply"
)

// TopicsListRequest asks for the catalogue, optionally only the topics that apply to
// a platform ("Windows", "macOS").
type TopicsListRequest struct {
	Header
	Platform string `json:"platform,omitempty"`
	// Locale is the language of the titles and descriptions (internal/locale:
	// de, fr; English when empty or not translated).
	Locale string `json:"locale,omitempty"`
}

// TopicsListReply is the catalogue, sorted by id.
type TopicsListReply struct {
	Header
	Topics []Topic `json:"topics"`
}

// TopicsGetRequest asks for one topic.
type TopicsGetRequest struct {
	Header
	Topic  string `json:"topic"`
	Locale string `json:"locale,omitempty"` // as in TopicsListRequest
}

// TopicsGetReply is one topic.
type TopicsGetReply struct {
	Header
	Topic Topic `json:"topic"`
}

// Topic is what a chatbot needs to know about a topic to offer it.
type Topic struct {
	ID           string        `json:"id"`
	LegacyID     string        `json:"legacy_id,omitempty"`
	Title        string        `json:"title"`
	Description  string        `json:"description"`
	Platforms    []string      `json:"platforms"`
	Phrases      []string      `json:"phrases"` // how employees say they have the problem, to pick the topic of a message
	Queries      []string      `json:"queries"`
	Remediations []Remediation `json:"remediations"`
}

// Remediation is one fix a topic can suggest: a remote action, or a message for the
// employee.
type Remediation struct {
	ID           string `json:"id"`
	Title        string `json:"title"`
	RemoteAction string `json:"remote_action,omitempty"`
	Message      string `json:"message,omitempty"`
}
