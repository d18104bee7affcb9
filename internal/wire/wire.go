// Package wire turns what the store holds into the messages of the contract
// (package events): an execution, a discovery run, a proactive event and its
// change. Every service that answers or publishes a stored record uses these, so a
// record looks the same whoever sends it.
package wire

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Execution is the execution as the API and the events show it. Triggering,
// dexbridge's own state before Nexthink answers, reads as pending.
func Execution(e store.Execution) events.Execution {
	status := e.Status
	if status == store.ExecTriggering {
		status = events.StatusPending
	}
	return events.Execution{
		ID: e.ID, RequestID: e.RequestID, RemoteAction: e.RemoteAction,
		Device: events.ExecutionDevice{Name: e.DeviceName, CollectorUID: e.CollectorUID, Instance: e.Instance},
		Params: e.Params, Status: status, StatusDetails: e.StatusDetails, Outputs: e.Outputs,
		Reason: e.Reason, ExternalReference: e.ExternalReference, Topic: e.Topic, Remediation: e.Remediation,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ExpiresAt: e.ExpiresAt.UTC(),
	}
}

// ExecutionUpdates are the updates to publish for changed executions.
func ExecutionUpdates(execs ...store.Execution) []events.ExecutionUpdate {
	out := make([]events.ExecutionUpdate, len(execs))
	for i, e := range execs {
		out[i] = events.ExecutionUpdate{Execution: Execution(e), Version: e.Version}
	}
	return out
}

// DiscoveryRun is a discovery run as the events and the status show it.
func DiscoveryRun(r store.DiscoveryRun) events.DiscoveryRunInfo {
	info := events.DiscoveryRunInfo{ID: r.ID, Instance: r.Instance, Trigger: r.Trigger, StartedAt: r.StartedAt.UTC(),
		EndedAt: UTC(r.EndedAt), Outcome: r.Outcome, Attempts: r.Attempts, Devices: r.Devices, Users: r.Users,
		Activities: r.Activities, DataAsOf: UTC(r.DataAsOf)}
	if r.Error != nil {
		info.Error = *r.Error
	}
	return info
}

// ProactiveEvent is the API form of a stored proactive event, its message in
// English with the texts of every locale (events.ProactiveEvent.In picks one). A
// closed event's message is its recovery message.
func ProactiveEvent(e store.ProactiveEvent) events.ProactiveEvent {
	out := events.ProactiveEvent{
		ID: e.ID, Status: e.Status, Source: e.Source, WebhookID: e.WebhookID, Monitor: e.Monitor, Topic: e.Topic,
		Assessment: e.Assessment, Message: englishText(e), CloseMessage: e.CloseMessage,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ClosedAt: UTC(e.ClosedAt), AckedAt: UTC(e.AckedAt),
		Remediations: []events.SuggestedRemedy{},
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
			out.Remediations = []events.SuggestedRemedy{}
		}
	}
	// The texts per locale (none for an event recorded before there were any); the
	// recovery messages were rendered when it closed.
	if len(e.Texts) > 0 {
		_ = json.Unmarshal(e.Texts, &out.Texts)
	}
	var closing map[string]string
	if len(e.CloseTexts) > 0 && json.Unmarshal(e.CloseTexts, &closing) == nil {
		for loc, m := range closing {
			t := out.Texts[loc]
			t.CloseMessage = m
			if out.Texts == nil {
				out.Texts = map[string]events.ProactiveTexts{}
			}
			out.Texts[loc] = t
		}
	}
	return out
}

// DeliveryID is the id a callback delivery carries (header and body), the same on
// every attempt.
func DeliveryID(id int64) string { return "pd_" + strconv.FormatInt(id, 10) }

// ProactiveChanged is the document of an event change, as callbacks, server-sent
// events and NATS carry it. id "" is the change's own id, "<event id>:<kind>": an
// event opens and closes once, so a change read again (a stream replayed) has the
// same id and time (the change's); a callback passes its delivery's id instead.
func ProactiveChanged(e store.ProactiveEvent, kind, id string) events.ProactiveEventChanged {
	h := events.NewHeader(events.TypeProactiveEventChanged)
	h.ID, h.Time = e.ID+":"+kind, e.CreatedAt.UTC()
	if kind == events.ProactiveClosed && e.ClosedAt != nil {
		h.Time = e.ClosedAt.UTC()
	}
	if id != "" {
		h.ID = id
	}
	return events.ProactiveEventChanged{Header: h, Kind: kind, Event: ProactiveEvent(e)}
}

// ProactiveDelivery is the body of a callback delivery (the store's renderer), its
// texts in the subscription's locale.
func ProactiveDelivery(e store.ProactiveEvent, kind string, deliveryID int64, locale string) ([]byte, error) {
	doc := ProactiveChanged(e, kind, DeliveryID(deliveryID))
	doc.Event = doc.Event.In(locale)
	return json.Marshal(doc)
}

// TextFor is the employee's message of an event in a locale (a BCP 47 tag): the
// recovery message once the event is closed, English where the event has no text
// in that locale.
func TextFor(e store.ProactiveEvent, locale string) string {
	return ProactiveEvent(e).In(locale).Message
}

// englishText is the event's message as stored: English, the recovery message once
// it is closed.
func englishText(e store.ProactiveEvent) string {
	if e.Status == store.ProactiveClosed && e.CloseMessage != "" {
		return e.CloseMessage
	}
	return e.Message
}

// ProactiveKind is the change an event in the feed announces.
func ProactiveKind(e store.ProactiveEvent) string {
	if e.Status == store.ProactiveClosed {
		return events.ProactiveClosed
	}
	return events.ProactiveOpened
}

// UTC is t in UTC; nil stays nil.
func UTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
