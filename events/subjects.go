package events

import "strings"

// Subject names below are relative to a deployment prefix ("dexbridge" by default;
// tests use a unique prefix each). They follow <req|evt|cmd>.<domain>.<verb>[.<id>],
// lowercase, with variable tokens last so `*` and `>` subscriptions work.
const (
	// TopicsList asks for the topic catalogue.
	// Request TopicsListRequest, reply TopicsListReply. Served by the topics service.
	TopicsList = "req.topics.list"
	// TopicsGet asks for one topic by id.
	// Request TopicsGetRequest, reply TopicsGetReply. Served by the topics service.
	TopicsGet = "req.topics.get"
)

// Subjects builds absolute subject names for one deployment.
type Subjects struct {
	prefix string
}

// DefaultPrefix is the subject prefix of a deployment that does not set one.
const DefaultPrefix = "dexbridge"

// NewSubjects returns the catalogue under prefix (DefaultPrefix when empty).
func NewSubjects(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Subjects{prefix: prefix}
}

// Prefix is the deployment prefix.
func (s Subjects) Prefix() string { return s.prefix }

// Of returns the absolute subject for a catalogue name, with optional trailing tokens
// (ids), e.g. Of(RemoteActionUpdated, executionID).
func (s Subjects) Of(name string, tokens ...string) string {
	var b strings.Builder
	b.WriteString(s.prefix)
	b.WriteByte('.')
	b.WriteString(name)
	for _, t := range tokens {
		b.WriteByte('.')
		b.WriteString(t)
	}
	return b.String()
}

// Stream and bucket names are derived from the prefix too, upper-cased as JetStream
// convention has it, so that deployments sharing a NATS server stay apart.
func (s Subjects) Stream(name string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.prefix)) + "_" + name
}
