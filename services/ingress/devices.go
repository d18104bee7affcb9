package ingress

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// identification reads the one identification key of a query string, and the
// instance that narrows it.
func identification(q map[string][]string) (events.DevicesIdentifyRequest, error) {
	req := events.DevicesIdentifyRequest{Header: events.NewHeader(events.TypeDevicesIdentifyRequest)}
	names := slices.Sorted(maps.Keys(q))
	for _, name := range names {
		values := q[name]
		if !slices.Contains(events.IdentifierKeys(), name) && name != "instance" {
			return req, problem.InvalidField(name, "unknown parameter %q: identify by exactly one of %s (and optionally instance)",
				name, strings.Join(events.IdentifierKeys(), ", "))
		}
		if len(values) != 1 {
			return req, problem.InvalidField(name, "give %s once", name)
		}
	}
	for _, key := range events.IdentifierKeys() {
		values, ok := q[key]
		if !ok {
			continue
		}
		if req.Key != "" {
			return req, problem.InvalidField(key, "identify by exactly one key: got %s and %s", req.Key, key)
		}
		if err := events.CheckIdentifier(key, values[0]); err != nil {
			return req, err
		}
		req.Key, req.Value = key, values[0]
	}
	if req.Key == "" {
		return req, problem.InvalidField(events.KeyUsername, "identify by exactly one of %s", strings.Join(events.IdentifierKeys(), ", "))
	}
	if v, ok := q["instance"]; ok {
		if v[0] == "" {
			return req, problem.InvalidField("instance", "want an instance name, or leave instance out")
		}
		req.Instance = v[0]
	}
	return req, req.Validate()
}

// identifyDevices answers GET /api/v1/devices?<key>=<value>.
func (h *handlers) identifyDevices(w http.ResponseWriter, r *http.Request) {
	req, err := identification(delegateQuery(r.Context(), r.URL.Query()))
	if err == nil {
		err = delegateIdentify(r.Context(), req)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var raw json.RawMessage
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DevicesIdentify), req, &raw, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	if body, err := identifyAnswer(raw); err == nil { // passthrough.go
		writeRawJSON(w, http.StatusOK, body)
		return
	}
	var reply events.DevicesIdentifyReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		h.fail(w, r, fmt.Errorf("decode the identification reply: %w", err))
		return
	}
	if reply.Devices == nil {
		reply.Devices = []events.Device{}
	}
	writeJSON(w, http.StatusOK, api.Devices{DataAsOf: reply.DataAsOf, Devices: reply.Devices, Source: reply.Source,
		People: reply.People, Ambiguous: reply.Ambiguous})
}

// getDevice answers GET /api/v1/devices/{device}, a name or a collector UID, with
// an optional instance= that narrows it.
func (h *handlers) getDevice(w http.ResponseWriter, r *http.Request) {
	device := mux.Vars(r)["device"]
	req := events.DevicesGetRequest{Header: events.NewHeader(events.TypeDevicesGetRequest), Device: device}
	q := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch values := q[name]; {
		case name != "instance":
			h.fail(w, r, problem.InvalidField(name, "unknown parameter %q: only instance narrows a device", name))
			return
		case len(values) != 1 || values[0] == "":
			h.fail(w, r, problem.InvalidField("instance", "give one instance name, or leave instance out"))
			return
		}
		req.Instance = q[name][0]
	}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.delegateDevice(r.Context(), req.Device, req.Instance); err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.DevicesGetReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DevicesGet), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	body := api.Device{DataAsOf: reply.DataAsOf, Device: reply.Device, Source: reply.Source}
	if len(reply.OtherMatches) > 0 {
		body.OtherMatches = reply.OtherMatches
		body.Note = "several devices have this name; this is the most recently seen"
	}
	writeJSON(w, http.StatusOK, body)
}

// status answers GET /api/v1/status.
func (h *handlers) status(w http.ResponseWriter, r *http.Request) {
	var reply events.StatusGetReply
	req := events.StatusGetRequest{Header: events.NewHeader(events.TypeStatusGetRequest)}
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.StatusGet), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Status{Cache: reply.Cache, Instances: reply.Instances})
}

// runDiscovery answers POST /api/v1/admin/discovery, body {"instance": "eu"} or none
// for every instance: 202 when a run started, 409 when every one asked for was
// already running.
func (h *handlers) runDiscovery(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Instance string `json:"instance"`
	}
	if err := decodeJSON(w, r, &body, true); err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.DiscoveryRunRequest{Header: events.NewHeader(events.TypeDiscoveryRunRequest), Instance: body.Instance,
		RequestedBy: "key:" + principalFrom(r.Context()).KeyID}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.DiscoveryRunReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DiscoveryRun), req, &reply); err != nil {
		h.fail(w, r, err)
		return
	}
	for _, run := range reply.Runs {
		if run.Status == events.RunStarted {
			writeJSON(w, http.StatusAccepted, api.DiscoveryRuns{Runs: reply.Runs})
			return
		}
	}
	h.fail(w, r, problem.New(problem.Conflict, "a discovery of every instance asked for is already running"))
}
