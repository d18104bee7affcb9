package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

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

// WebhookDedupeKey identifies a webhook across deliveries: the sender's delivery id
// when it gave one, else a hash of the source and the body.
func WebhookDedupeKey(source, deliveryID string, body []byte) string {
	if deliveryID != "" {
		return source + ":id:" + deliveryID
	}
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	return source + ":sha256:" + hex.EncodeToString(h.Sum(nil))
}

// WebhookMsgID is the Nats-Msg-Id of a dedupe key: fixed length, safe characters.
func WebhookMsgID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// WebhookID is the id a webhook is known by, derived from its dedupe key.
func WebhookID(key string) string {
	return "wh_" + WebhookMsgID(key)[:32]
}
