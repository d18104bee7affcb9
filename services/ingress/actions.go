package ingress

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// maxWaitSeconds bounds wait_seconds and ?wait=: above the chatbots' own limits
// (Copilot Studio about 100 s), below what proxies tolerate on an idle request.
const maxWaitSeconds = 120

// HeaderIdempotencyKey makes a trigger safe to retry; HeaderReplayed marks the answer
// to a retry.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

func executionPath(id string) string { return "/api/v1/remote-actions/executions/" + id }

// listRemoteActions answers GET /api/v1/remote-actions: the allow-list.
func (h *handlers) listRemoteActions(w http.ResponseWriter, r *http.Request) {
	var reply events.ActionsListReply
	req := events.ActionsListRequest{Header: events.NewHeader(events.TypeActionsListRequest)}
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.ActionsList), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	if reply.Actions == nil {
		reply.Actions = []events.RemoteAction{}
	}
	writeJSON(w, http.StatusOK, api.RemoteActions{RemoteActions: reply.Actions})
}

// waitSeconds reads an optional wait bound.
func waitSeconds(field string, v *int) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || *v > maxWaitSeconds {
		return 0, problem.InvalidField(field, "want 0 to %d seconds", maxWaitSeconds)
	}
	return time.Duration(*v) * time.Second, nil
}

// idempotencyKey reads the Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values(HeaderIdempotencyKey)
	if len(vs) > 1 {
		return "", problem.InvalidField(HeaderIdempotencyKey, "send one %s", HeaderIdempotencyKey)
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], events.CheckIdempotencyKey(vs[0])
}

// triggerExecution answers POST /api/v1/remote-actions/executions.
func (h *handlers) triggerExecution(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RemoteAction      string            `json:"remote_action"`
		Device            string            `json:"device"`
		Params            map[string]string `json:"params"`
		WaitSeconds       *int              `json:"wait_seconds"`
		Reason            string            `json:"reason"`
		ExternalReference string            `json:"external_reference"`
		Force             bool              `json:"force"`
	}
	if err := decodeJSON(w, r, &body, false); err != nil {
		h.fail(w, r, err)
		return
	}
	wait, err := waitSeconds("wait_seconds", body.WaitSeconds)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.ActionsTriggerRequest{Header: events.NewHeader(events.TypeActionsTriggerRequest),
		RemoteAction: body.RemoteAction, Device: body.Device, Params: body.Params, Reason: body.Reason,
		ExternalReference: body.ExternalReference, IdempotencyKey: key, Force: body.Force}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.delegateDevice(r.Context(), req.Device, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	h.runExecution(w, r, events.ActionsTrigger, req, wait, key != "")
}

// remediate answers POST /api/v1/topics/{topic}/remediations/{id}.
func (h *handlers) remediate(w http.ResponseWriter, r *http.Request) {
	var body api.RemediationRequest
	if err := decodeJSON(w, r, &body, false); err != nil {
		h.fail(w, r, err)
		return
	}
	wait, err := waitSeconds("wait_seconds", body.WaitSeconds)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	vars := mux.Vars(r)
	req := events.ActionsRemediateRequest{Header: events.NewHeader(events.TypeActionsRemediateRequest),
		Topic: vars["topic"], Remediation: vars["id"], Device: body.Device, Reason: body.Reason, IdempotencyKey: key, Force: body.Force}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.delegateDevice(r.Context(), req.Device, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	h.runExecution(w, r, events.ActionsRemediate, req, wait, key != "")
}

// runExecution asks the remote action manager to trigger, then waits here, on the
// execution's events, up to wait for its final state: 200 with it, else 202 with
// Location. The wait ends early, 202, when the execution waits for a device that is
// not there (waiting_for_device, or pending on a device not online): the answer's
// device says when it was last seen and expires_at when Nexthink gives up. The
// worker's pool slot is free as soon as the trigger is answered. A trigger is sent
// again when its worker is lost only when an Idempotency-Key makes that safe (keyed).
func (h *handlers) runExecution(w http.ResponseWriter, r *http.Request, subject string, req events.Message, wait time.Duration, keyed bool) {
	var reply events.ExecutionReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(subject), req, &reply, natsrpc.IdempotentIf(keyed)); err != nil {
		h.fail(w, r, err)
		return
	}
	e := reply.Execution
	if wait > 0 && !events.FinalStatus(e.Status) {
		h.extendWrite(w, wait)
		e = events.AwaitExecution(r.Context(), h.opts.Events, h.opts.Subjects, e, h.execution, events.AwaitOptions{Wait: wait, UntilDeviceAway: true})
	}
	w.Header().Set("Location", executionPath(e.ID))
	if reply.Replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	status := http.StatusAccepted
	if events.FinalStatus(e.Status) || reply.Existing { // an existing execution was not accepted now
		status = http.StatusOK
	}
	writeJSON(w, status, api.Execution{Execution: e, Replayed: reply.Replayed, Existing: reply.Existing})
}

// getExecution answers GET /api/v1/remote-actions/executions/{id}[?wait=N]: the
// current state, or, with wait, the next state (long poll) within N seconds; at once
// when the execution waits for a device that is not there.
func (h *handlers) getExecution(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if !events.ValidExecutionID(id) {
		h.fail(w, r, problem.New(problem.NotFound, "no execution %q", id))
		return
	}
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.fail(w, r, problem.InvalidField("wait", "want 0 to %d seconds", maxWaitSeconds))
			return
		}
		if wait, err = waitSeconds("wait", &n); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	var watch *events.ExecutionWatch
	if wait > 0 && h.opts.Events != nil {
		// Subscribe before reading, so that no change slips between the two.
		var err error
		if watch, err = events.WatchExecution(r.Context(), h.opts.Events, h.opts.Subjects, id); err != nil {
			h.fail(w, r, err)
			return
		}
		defer watch.Stop()
	}
	e, err := h.execution(r.Context(), id)
	if err == nil {
		err = h.delegateExecution(r.Context(), e)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if watch != nil && !events.FinalStatus(e.Status) {
		h.extendWrite(w, wait)
		e = watch.Next(r.Context(), e, h.execution, events.AwaitOptions{Wait: wait, AnyChange: true, UntilDeviceAway: true})
	}
	writeJSON(w, http.StatusOK, api.Execution{Execution: e})
}

// execution reads an execution from the remote action manager.
func (h *handlers) execution(ctx context.Context, id string) (events.Execution, error) {
	var reply events.ExecutionReply
	req := events.ActionsGetRequest{Header: events.NewHeader(events.TypeActionsGetRequest), ID: id}
	err := h.opts.RPC.Call(ctx, h.opts.Subjects.Of(events.ActionsGet), req, &reply, natsrpc.Idempotent)
	return reply.Execution, err
}

// extendWrite lets a long poll outlive the server's write timeout (60 s).
func (h *handlers) extendWrite(w http.ResponseWriter, wait time.Duration) {
	err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 15*time.Second))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.opts.Log.Debug("extending the write deadline failed", "err", err)
	}
}
