// Package proactive delivers proactive conversation events to chatbots, three ways:
// a signed HTTP callback with retries (Dispatcher), a feed a chatbot polls with a
// cursor, and server-sent events that follow the same feed (Feed). The events
// themselves are recorded by the webhooks worker; PostgreSQL holds the feed and the
// callback outbox, so every replica can serve and deliver them.
package proactive

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Event is the API form of a stored event.
func Event(e store.ProactiveEvent) events.ProactiveEvent {
	out := events.ProactiveEvent{
		ID: e.ID, Status: e.Status, Source: e.Source, WebhookID: e.WebhookID, Monitor: e.Monitor, Topic: e.Topic,
		Message: e.Message, CloseMessage: e.CloseMessage,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ClosedAt: utc(e.ClosedAt), AckedAt: utc(e.AckedAt),
		Remediations: []events.ProactiveRemediation{},
	}
	if e.FeedSeq != nil {
		out.Cursor = strconv.FormatInt(*e.FeedSeq, 10)
	}
	if e.UserName != "" {
		out.Employee = &events.ProactiveEmployee{Name: e.UserName, UPN: e.UserUPN}
	}
	if e.DeviceName != "" {
		out.Device = &events.ProactiveDevice{Name: e.DeviceName, CollectorUID: e.CollectorUID, Instance: e.Instance, Platform: e.Platform}
	}
	// These columns hold what the worker marshalled from the same types.
	_ = json.Unmarshal(e.Alert, &out.Alert)
	if len(e.Diagnosis) > 0 && string(e.Diagnosis) != "null" {
		var d events.ProactiveDiagnosis
		if json.Unmarshal(e.Diagnosis, &d) == nil {
			out.Diagnosis = &d
		}
	}
	if len(e.Remediations) > 0 {
		_ = json.Unmarshal(e.Remediations, &out.Remediations)
		if out.Remediations == nil {
			out.Remediations = []events.ProactiveRemediation{}
		}
	}
	return out
}

// DeliveryID is the id a callback delivery carries (header and body), the same on
// every attempt.
func DeliveryID(id int64) string { return "pd_" + strconv.FormatInt(id, 10) }

// Changed is the document of an event change, as callbacks, server-sent events and
// NATS carry it.
func Changed(e store.ProactiveEvent, kind, id string) events.ProactiveEventChanged {
	h := events.NewHeader(events.TypeProactiveEventChanged)
	if id != "" {
		h.ID = id
	}
	return events.ProactiveEventChanged{Header: h, Kind: kind, Event: Event(e)}
}

// RenderDelivery is the store's callback body builder.
func RenderDelivery(e store.ProactiveEvent, kind string, deliveryID int64) ([]byte, error) {
	return json.Marshal(Changed(e, kind, DeliveryID(deliveryID)))
}

// KindOf is the change an event in the feed announces.
func KindOf(e store.ProactiveEvent) string {
	if e.Status == store.ProactiveClosed {
		return events.ProactiveClosed
	}
	return events.ProactiveOpened
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
