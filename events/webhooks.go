package events

import "encoding/json"

// Type token of an accepted webhook.
const TypeWebhookReceived = "dexbridge.webhooks.v1.received"

// StreamWebhooks is the JetStream stream (name relative to the deployment, see
// Subjects.Stream) that holds accepted webhooks until the webhook worker has
// processed them: file storage, work-queue retention, deduplicated on Nats-Msg-Id.
const StreamWebhooks = "WEBHOOKS"

// WebhookReceived is a webhook the ingress accepted, published on
// WebhooksReceived.<source> with Nats-Msg-Id set to its dedupe key's hash. Its id is
// derived from the dedupe key ("wh_" and 32 hex digits), so every delivery of the
// same webhook has the same id; its time is when dexbridge received it.
type WebhookReceived struct {
	Header
	Source string `json:"source"`
	// DedupeKey identifies the webhook across deliveries: "<source>:id:<delivery id>"
	// when the sender gave a delivery id, else "<source>:sha256:<hash of the body>".
	DedupeKey   string `json:"dedupe_key"`
	DeliveryID  string `json:"delivery_id,omitempty"`
	Method      string `json:"method"`
	ContentType string `json:"content_type,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
	// Payload is the body as received (a JSON object).
	Payload json.RawMessage `json:"payload"`
}
