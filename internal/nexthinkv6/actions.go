package nexthinkv6

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// CodeNotDescribed is the code of RemoteAction(s): the V6 Portal has no API that
// describes remote actions.
const CodeNotDescribed = "not_described"

// RemoteActions fails: a V6 Portal does not list remote actions through an API.
func (d *Driver) RemoteActions(context.Context) ([]nexthink.RemoteAction, error) {
	return nil, &nexthink.Error{Instance: d.cfg.Instance, Call: "act.remote_actions", Code: CodeNotDescribed,
		Message: "a V6 Portal does not describe its remote actions; the allow-list's declaration applies"}
}

// RemoteAction fails as RemoteActions does; callers fall back on the allow-list.
func (d *Driver) RemoteAction(_ context.Context, id string) (*nexthink.RemoteAction, error) {
	return nil, &nexthink.Error{Instance: d.cfg.Instance, Call: "act.remote_action", Target: id, Code: CodeNotDescribed,
		Message: "a V6 Portal does not describe its remote actions; the allow-list's declaration applies"}
}

// runRequest is the body of POST /api/remoteaction/v2/run.
type runRequest struct {
	RequestUID         string            `json:"requestUid"`
	RemoteActionUID    string            `json:"remoteActionUid"`
	DeviceUIDs         []string          `json:"deviceUids"`
	EngineDatabaseUIDs []string          `json:"engineDatabaseUids,omitempty"`
	TimeoutSeconds     int               `json:"timeoutSeconds"`
	Params             map[string]string `json:"params,omitempty"`
}

// runResponse is the Portal's answer: what each Engine did.
type runResponse struct {
	RequestUID string `json:"requestUid"`
	Engines    []struct {
		UID        string   `json:"uid"`
		Name       string   `json:"name"`
		Status     string   `json:"status"`
		DeviceUIDs []string `json:"deviceUids"`
	} `json:"engines"`
}

// Trigger runs a remote action through the Portal. The run goes to the devices'
// Engines when every device is routed, else to every Engine (each takes the
// devices it holds); if a routed Engine did not take a device (it moved), the run
// is sent once more to every Engine with the same requestUid. timeoutSeconds is
// the trigger's expiry (at most MaxTimeoutSeconds): a device that does not start
// the action within it never runs it.
func (d *Driver) Trigger(ctx context.Context, req nexthink.TriggerRequest) (*nexthink.TriggerResponse, error) {
	call := httpCall{name: "portal.run", target: req.RemoteActionID}
	if req.RemoteActionID == "" || len(req.Devices) == 0 || len(req.Devices) > 10000 {
		return nil, d.err(call, 0, nexthink.CodeInvalid, "a remote action id and 1 to 10000 devices are required", nil)
	}
	engines, err := d.engineList(ctx)
	if err != nil {
		return nil, err
	}
	timeout := d.cfg.MaxTimeoutSeconds
	if req.ExpiresInMinutes > 0 {
		timeout = min(timeout, req.ExpiresInMinutes*60)
	}
	run := runRequest{RequestUID: uuid.NewString(), RemoteActionUID: req.RemoteActionID,
		DeviceUIDs: req.Devices, TimeoutSeconds: timeout, Params: req.Params}
	want := map[string]bool{}
	for _, u := range req.Devices {
		want[strings.ToLower(u)] = true
	}
	routed := d.enginesOf(ctx, req.Devices, engines)
	var taken map[string]bool
	var unavailable []string
	for attempt := 0; attempt < 2; attempt++ {
		run.EngineDatabaseUIDs = nil
		targets := engines
		if attempt == 0 && routed != nil {
			targets = routed
			for _, e := range routed {
				run.EngineDatabaseUIDs = append(run.EngineDatabaseUIDs, e.UID)
			}
		}
		if allDown(d, targets) {
			call.name += " on " + names(targets)
			return nil, d.err(call, 0, nexthink.CodeUnavailable, "the devices' Engines are marked down", nil)
		}
		body, _ := json.Marshal(run)
		raw, ne := d.portalCall(ctx, "portal.run", http.MethodPost, "/api/remoteaction/v2/run", body, retryUnsent)
		if ne != nil {
			ne.Target = req.RemoteActionID
			return nil, ne
		}
		var resp runResponse
		if err := json.Unmarshal(raw, &resp); err != nil {
			return nil, d.err(call, http.StatusOK, nexthink.CodeBadResponse, "the answer is not the expected JSON", err)
		}
		taken, unavailable = d.takenBy(ctx, resp, engines)
		missing := false
		for u := range want {
			if !taken[u] {
				missing = true
			}
		}
		if !missing || attempt == 1 || routed == nil {
			break
		}
		d.log.Info("nexthink v6 run: a device was not on its Engine, asking every Engine", "remote_action", req.RemoteActionID)
	}
	if len(taken) == 0 {
		if len(unavailable) > 0 {
			call.name += " on " + strings.Join(unavailable, ", ")
			return nil, d.err(call, 0, nexthink.CodeUnavailable, "the Engines did not take the run; the devices may be there", nil)
		}
		return nil, d.err(call, http.StatusBadRequest, "INVALID_DEVICES", "no Engine holds the devices", nil)
	}
	return &nexthink.TriggerResponse{RequestID: run.RequestUID, ExpiresInMinutes: (timeout + 59) / 60}, nil
}

// takenBy reads which devices the Engines took (and routes them), and which
// Engines did not answer the run.
func (d *Driver) takenBy(ctx context.Context, resp runResponse, engines []*engineState) (map[string]bool, []string) {
	taken := map[string]bool{}
	var learned []tagged
	var unavailable []string
	for _, er := range resp.Engines {
		var e *engineState
		for _, x := range engines {
			if strings.EqualFold(x.UID, er.UID) || x.Name == er.Name {
				e = x
			}
		}
		if er.Status != "OK" {
			unavailable = append(unavailable, er.Name)
			continue
		}
		for _, u := range er.DeviceUIDs {
			taken[strings.ToLower(u)] = true
			if e != nil {
				learned = append(learned, tagged{e, map[string]any{colCollectorUID: u}})
			}
		}
	}
	d.learn(ctx, learned)
	return taken, unavailable
}

// enginesOf returns the Engines the devices are routed to, or nil when one of
// them has no route (or its Engine has no known database UID).
func (d *Driver) enginesOf(ctx context.Context, devices []string, engines []*engineState) []*engineState {
	keys := make([]string, len(devices))
	for k, u := range devices {
		keys[k] = "uid:" + strings.ToLower(u)
	}
	d.recall(ctx, keys)
	var out []*engineState
	for _, key := range keys {
		e := d.routed(ctx, key, engines)
		if e == nil || e.UID == "" {
			return nil
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func allDown(d *Driver, engines []*engineState) bool {
	for _, e := range engines {
		if !d.isDown(e) {
			return false
		}
	}
	return true
}

func names(engines []*engineState) string {
	n := make([]string, len(engines))
	for k, e := range engines {
		n[k] = e.Name
	}
	return strings.Join(n, ", ")
}
