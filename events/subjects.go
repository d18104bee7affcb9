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

	// DevicesIdentify asks for an employee's devices, or a device, by one key.
	// Request DevicesIdentifyRequest, reply DevicesIdentifyReply. Served by the devices service.
	DevicesIdentify = "req.devices.identify"
	// DevicesGet asks for one cached device with its cached fields.
	// Request DevicesGetRequest, reply DevicesGetReply. Served by the devices service.
	DevicesGet = "req.devices.get"
	// StatusGet asks for the instances' health, their discovery and the cache sizes.
	// Request StatusGetRequest, reply StatusGetReply. Served by the devices service.
	StatusGet = "req.status.get"
	// DiscoveryRun starts a discovery now (of one instance or all), under the lease.
	// Request DiscoveryRunRequest, reply DiscoveryRunReply. Served by the discovery service.
	DiscoveryRun = "cmd.discovery.run"
	// DiscoveryFinished is published after every discovery run, with the instance
	// as last token: subscribe to evt.discovery.finished.* for all of them.
	// Message DiscoveryFinishedEvent. Published by the discovery service and `dexbridge discover`.
	DiscoveryFinished = "evt.discovery.finished"

	// WebhooksReceived carries accepted webhooks into the WEBHOOKS stream, with the
	// source as last token (evt.webhooks.received.nexthink).
	// Message WebhookReceived. Published by the ingress; consumed by the webhooks worker.
	WebhooksReceived = "evt.webhooks.received"
	// ProactiveChanged announces that a proactive event opened or closed, after the
	// change is committed. Core NATS, best effort: it wakes the callback dispatcher and
	// the server-sent event streams early; the feed in PostgreSQL is authoritative.
	// Message ProactiveEventChanged. Published by the webhooks worker.
	ProactiveChanged = "evt.proactive.changed"

	// Remote-action executions: requests served by the remoteactions service; updates
	// are JetStream messages (stream Stream("EXECUTIONS")), one per state change, with
	// the execution id as last token, so any replica can wake the HTTP requests waiting
	// on an execution.
	// ActionsList asks for the remote actions dexbridge may trigger.
	// Request ActionsListRequest, reply ActionsListReply.
	ActionsList = "req.actions.list"
	// ActionsTrigger triggers a remote action on one device.
	// Request ActionsTriggerRequest, reply ExecutionReply.
	ActionsTrigger = "req.actions.trigger"
	// ActionsRemediate runs a topic's remediation on a device with the params of the
	// latest diagnosis. Request ActionsRemediateRequest, reply ExecutionReply.
	ActionsRemediate = "req.actions.remediate"
	// ActionsGet asks for one execution.
	// Request ActionsGetRequest, reply ExecutionReply.
	ActionsGet = "req.actions.get"
	// ExecutionsList lists executions, newest first, a page at a time.
	// Request ExecutionsListRequest, reply ExecutionsListReply.
	ExecutionsList = "req.executions.list"
	// ActionsUpdated carries every state change of an execution, as
	// evt.actions.updated.<execution id>. Message ExecutionUpdatedEvent.
	ActionsUpdated = "evt.actions.updated"

	// Diagnosis and the NQL wrapper, served by the topics service.
	// TopicsDiagnose diagnoses a topic on a device.
	// Request DiagnoseRequest, reply DiagnoseReply.
	TopicsDiagnose = "req.topics.diagnose"
	// NQLExecute runs a saved query through the NQL wrapper (cache or live).
	// Request NQLRequest, reply NQLReply.
	NQLExecute = "req.nql.execute"
	// NQLExport runs a saved query through the export API and streams every row back
	// (a natsrpc stream). Request NQLExportRequest; stream NQLExportStarted, the body,
	// NQLExportFinished.
	NQLExport = "req.nql.export"
	// TopicsReload tells every topics worker to reload its topics, allow-list and
	// saved queries. Broadcast, not a queue group: each replica answers.
	// Request TopicsReloadRequest, reply TopicsReloadReply (one per replica).
	TopicsReload = "cmd.topics.reload"
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
