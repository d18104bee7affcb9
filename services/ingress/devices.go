package ingress

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// identifierFormats are what each identification key accepts. None admits NQL
// wildcards (*), control characters or path separators.
var identifierFormats = map[string]struct {
	re   *regexp.Regexp
	want string
}{
	// jdoe, DOMAIN\jdoe, jdoe@corp.example.com, "Jane O'Neil".
	events.KeyUsername: {regexp.MustCompile(`^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._@\\'$+-]{0,255}$`),
		"a user name of letters, digits, spaces and ._@\\'$+-"},
	events.KeyUPN: {regexp.MustCompile(`^[\p{L}\p{M}\p{N}._%+'-]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?)*$`),
		"a user principal name such as jdoe@example.com"},
	events.KeyEmail: {regexp.MustCompile(`^[\p{L}\p{M}\p{N}._%+'-]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,62}[\p{L}\p{N}])?)+$`),
		"an e-mail address such as jdoe@example.com"},
	events.KeySID: {regexp.MustCompile(`^[Ss]-1-[0-9]{1,14}(-[0-9]{1,10}){1,15}$`),
		"a security identifier such as S-1-5-21-1004336348-1177238915-682003330-1001"},
	events.KeyDeviceName: {regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{M}\p{N} ._'’-]{0,254}$`),
		"a device name of letters, digits, spaces and ._'-"},
	events.KeyCollectorUID: {regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`),
		"a collector UID such as 1f5209c4-0166-4765-b4fa-29984d51deb1"},
}

// identification reads the one identification key of a query string.
func identification(q map[string][]string) (events.DevicesIdentifyRequest, error) {
	req := events.DevicesIdentifyRequest{Header: events.NewHeader(events.TypeDevicesIdentifyRequest)}
	names := slices.Sorted(maps.Keys(q))
	for _, name := range names {
		values := q[name]
		if _, ok := identifierFormats[name]; !ok {
			return req, problem.InvalidField(name, "unknown parameter %q: identify by exactly one of %s", name, strings.Join(events.IdentifierKeys(), ", "))
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
		f := identifierFormats[key]
		if v := values[0]; !f.re.MatchString(v) {
			return req, problem.InvalidField(key, "want %s", f.want)
		}
		req.Key, req.Value = key, values[0]
	}
	if req.Key == "" {
		return req, problem.InvalidField(events.KeyUsername, "identify by exactly one of %s", strings.Join(events.IdentifierKeys(), ", "))
	}
	return req, nil
}

// identifyDevices answers GET /api/v1/devices?<key>=<value>.
func (h *handlers) identifyDevices(w http.ResponseWriter, r *http.Request) {
	req, err := identification(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.DevicesIdentifyReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DevicesIdentify), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	if reply.Devices == nil {
		reply.Devices = []events.Device{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": reply.Devices, "source": reply.Source, "data_as_of": reply.DataAsOf})
}

// getDevice answers GET /api/v1/devices/{device}, a name or a collector UID.
func (h *handlers) getDevice(w http.ResponseWriter, r *http.Request) {
	device := mux.Vars(r)["device"]
	if !identifierFormats[events.KeyDeviceName].re.MatchString(device) && !identifierFormats[events.KeyCollectorUID].re.MatchString(device) {
		h.fail(w, r, problem.InvalidField("device", "want a device name or a collector UID"))
		return
	}
	req := events.DevicesGetRequest{Header: events.NewHeader(events.TypeDevicesGetRequest), Device: device}
	var reply events.DevicesGetReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DevicesGet), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	body := map[string]any{"device": reply.Device, "source": reply.Source, "data_as_of": reply.DataAsOf}
	if len(reply.OtherMatches) > 0 {
		body["other_matches"] = reply.OtherMatches
		body["note"] = "several devices have this name; this is the most recently seen"
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
	writeJSON(w, http.StatusOK, map[string]any{"instances": reply.Instances, "cache": reply.Cache})
}

var instanceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

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
	if body.Instance != "" && !instanceName.MatchString(body.Instance) {
		h.fail(w, r, problem.InvalidField("instance", "want an instance name"))
		return
	}
	req := events.DiscoveryRunRequest{Header: events.NewHeader(events.TypeDiscoveryRunRequest), Instance: body.Instance,
		RequestedBy: "key:" + principalFrom(r.Context()).KeyID}
	var reply events.DiscoveryRunReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.DiscoveryRun), req, &reply); err != nil {
		h.fail(w, r, err)
		return
	}
	for _, run := range reply.Runs {
		if run.Status == events.RunStarted {
			writeJSON(w, http.StatusAccepted, map[string]any{"runs": reply.Runs})
			return
		}
	}
	h.fail(w, r, problem.New(problem.Conflict, "a discovery of every instance asked for is already running"))
}
