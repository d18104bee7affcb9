// Package events is dexbridge's NATS contract: the subject catalogue, the typed
// messages that travel on it and their JSON Schemas (in schemas/events), the checks
// of what requests carry (check.go, which the ingress and the workers both run), the
// JetStream streams (streams.go) and the helpers every side needs: publishing an
// execution's updates or a proactive change (publish.go) and waiting for an
// execution (await.go). Services meet only here: none imports another.
//
// Every message carries a Header. The type token names the message and its version
// ("dexbridge.topics.v1.list_request"); within a version only optional fields are
// added, and a breaking change is a new type. Subjects never carry the version.
package events

import (
	"time"

	"github.com/google/uuid"
)

// Header is the first part of every message.
type Header struct {
	Type string    `json:"type"`
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// NewHeader stamps a new message of type typ.
func NewHeader(typ string) Header {
	return Header{Type: typ, ID: uuid.NewString(), Time: time.Now().UTC().Truncate(time.Millisecond)}
}

// Message is implemented by every typed message.
type Message interface {
	MessageHeader() Header
}

// MessageHeader returns the header; embedding Header makes a struct a Message.
func (h Header) MessageHeader() Header { return h }

// NATS header names carried beside the payload.
const (
	// HeaderRequestID carries the HTTP request id to the workers, for logs and
	// for the remote action's triggerInfo.externalReference.
	HeaderRequestID = "Dexbridge-Request-Id"
	// HeaderAPIKeyID names the API key that made the request (never the key itself).
	HeaderAPIKeyID = "Dexbridge-Api-Key-Id"
)
