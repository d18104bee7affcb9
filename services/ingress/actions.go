package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
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

// executionBody is an execution as the API returns it.
type executionBody struct {
	events.Execution
	Replayed bool `json:"replayed,omitempty"`
}

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
	writeJSON(w, http.StatusOK, map[string]any{"remote_actions": reply.Actions})
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
		ExternalReference: body.ExternalReference, IdempotencyKey: key}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	h.runExecution(w, r, events.ActionsTrigger, req, wait, key != "")
}

// remediate answers POST /api/v1/topics/{topic}/remediations/{id}.
func (h *handlers) remediate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Device      string `json:"device"`
		WaitSeconds *int   `json:"wait_seconds"`
		Reason      string `json:"reason"`
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
	vars := mux.Vars(r)
	req := events.ActionsRemediateRequest{Header: events.NewHeader(events.TypeActionsRemediateRequest),
		Topic: vars["topic"], Remediation: vars["id"], Device: body.Device, Reason: body.Reason, IdempotencyKey: key}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	h.runExecution(w, r, events.ActionsRemediate, req, wait, key != "")
}

// runExecution asks the remote action manager to trigger, then waits here, on the
// execution's events, up to wait for its final state: 200 with it, else 202 with
// Location. The worker's pool slot is free as soon as the trigger is answered. A
// trigger is sent again when its worker is lost only when an Idempotency-Key makes
// that safe (keyed).
func (h *handlers) runExecution(w http.ResponseWriter, r *http.Request, subject string, req events.Message, wait time.Duration, keyed bool) {
	var reply events.ExecutionReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(subject), req, &reply, natsrpc.IdempotentIf(keyed)); err != nil {
		h.fail(w, r, err)
		return
	}
	e := reply.Execution
	if wait > 0 && !events.FinalStatus(e.Status) {
		h.extendWrite(w, wait)
		e = h.awaitExecution(r.Context(), e, wait, true)
	}
	w.Header().Set("Location", executionPath(e.ID))
	if reply.Replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	status := http.StatusAccepted
	if events.FinalStatus(e.Status) {
		status = http.StatusOK
	}
	writeJSON(w, status, executionBody{Execution: e, Replayed: reply.Replayed})
}

// getExecution answers GET /api/v1/remote-actions/executions/{id}[?wait=N]: the
// current state, or, with wait, the next state (long poll) within N seconds.
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
	var sub *nats.Subscription
	if wait > 0 && h.opts.Events != nil {
		// Subscribe before reading, so that no change slips between the two.
		var err error
		if sub, err = h.subscribe(r.Context(), id); err != nil {
			h.fail(w, r, err)
			return
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	e, err := h.execution(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if sub != nil && !events.FinalStatus(e.Status) {
		h.extendWrite(w, wait)
		e = h.next(r.Context(), sub, e, wait, false)
	}
	writeJSON(w, http.StatusOK, executionBody{Execution: e})
}

// execution reads an execution from the remote action manager.
func (h *handlers) execution(ctx context.Context, id string) (events.Execution, error) {
	var reply events.ExecutionReply
	req := events.ActionsGetRequest{Header: events.NewHeader(events.TypeActionsGetRequest), ID: id}
	err := h.opts.RPC.Call(ctx, h.opts.Subjects.Of(events.ActionsGet), req, &reply, natsrpc.Idempotent)
	return reply.Execution, err
}

// subscribe listens to an execution's updates; the subscription is in place on the
// server when it returns.
func (h *handlers) subscribe(ctx context.Context, id string) (*nats.Subscription, error) {
	sub, err := h.opts.Events.SubscribeSync(h.opts.Subjects.Of(events.ActionsUpdated, id))
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = h.opts.Events.FlushWithContext(fctx) // a round trip: the server has the subscription
		cancel()
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		return nil, problem.Wrap(problem.ServiceUnavailable, err, "the message bus is unavailable").Retry(time.Second)
	}
	return sub, nil
}

// awaitExecution waits up to wait for e to reach a final state (final) or to change
// at all, and returns the latest state known. Without a bus, it returns e.
func (h *handlers) awaitExecution(ctx context.Context, e events.Execution, wait time.Duration, final bool) events.Execution {
	if h.opts.Events == nil {
		return e
	}
	sub, err := h.subscribe(ctx, e.ID)
	if err != nil {
		return e
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Read again now that the subscription is in place: a change may have come first.
	if cur, err := h.execution(ctx, e.ID); err == nil && !cur.UpdatedAt.Before(e.UpdatedAt) {
		e = cur
	}
	if events.FinalStatus(e.Status) {
		return e
	}
	return h.next(ctx, sub, e, wait, final)
}

// next waits on sub, up to wait, for an update of e that is final (final) or newer,
// then returns it. When the wait ends without one, it reads the execution once more:
// the database is authoritative and an event may have been lost.
func (h *handlers) next(ctx context.Context, sub *nats.Subscription, e events.Execution, wait time.Duration, final bool) events.Execution {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		msg, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			break
		}
		var ev events.ExecutionUpdatedEvent
		if json.Unmarshal(msg.Data, &ev) != nil || ev.Execution.ID != e.ID || ev.Execution.UpdatedAt.Before(e.UpdatedAt) {
			continue
		}
		changed := ev.Execution.UpdatedAt.After(e.UpdatedAt) || ev.Execution.Status != e.Status
		e = ev.Execution
		if events.FinalStatus(e.Status) || (changed && !final) {
			return e
		}
	}
	if ctx.Err() != nil {
		return e
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if cur, err := h.execution(rctx, e.ID); err == nil && !cur.UpdatedAt.Before(e.UpdatedAt) {
		return cur
	}
	return e
}

// extendWrite lets a long poll outlive the server's write timeout (60 s).
func (h *handlers) extendWrite(w http.ResponseWriter, wait time.Duration) {
	err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 15*time.Second))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.opts.Log.Debug("extending the write deadline failed", "err", err)
	}
}
