package ingress

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

// diagnose answers POST /api/v1/topics/{topic}/diagnosis, body
// {"device": "<name or collector UID>", "refresh": false}.
func (h *handlers) diagnose(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["topic"]
	if err := events.CheckTopicID(id); err != nil {
		h.fail(w, r, err)
		return
	}
	var body api.DiagnosisRequest
	if err := decodeJSON(w, r, &body, false); err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.DiagnoseRequest{Header: events.NewHeader(events.TypeDiagnoseRequest), Topic: id, Device: body.Device, Refresh: body.Refresh,
		Locale: language(r)}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.delegateDevice(r.Context(), req.Device, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	if body.Refresh && h.opts.RefreshTimeout > 0 {
		// A refresh waits for the data collection first: the worker's bound on top of
		// the usual request time.
		wait := h.opts.RefreshTimeout + h.opts.RequestTimeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
	}
	var reply events.DiagnoseReply
	// A diagnosis reads, and may be asked twice; a refresh triggers data collections
	// first, so it is not sent again.
	if err := h.opts.RPC.Call(ctx, h.opts.Subjects.Of(events.TopicsDiagnose), req, &reply, natsrpc.IdempotentIf(!body.Refresh)); err != nil {
		h.fail(w, r, err)
		return
	}
	contentLanguage(w, req.Locale)
	writeJSON(w, http.StatusOK, reply.Diagnosis)
}

// reloadTopics answers POST /api/v1/admin/reload: every worker that serves the reload
// broadcast (each topics worker) reloads its topics, allow-list and saved queries.
// 200 when each put the new set in force; 422 with the problems when the set was
// refused (the previous set stays in force).
func (h *handlers) reloadTopics(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.TopicsReloadRequest{Header: events.NewHeader(events.TypeTopicsReloadRequest),
		RequestedBy: "key:" + principalFrom(r.Context()).KeyID}
	var answer api.Reload
	answered, expected, err := h.opts.RPC.CallAll(r.Context(), h.opts.Subjects.Of(events.TopicsReload), req, func(raw []byte) error {
		var reply events.TopicsReloadReply
		if err := json.Unmarshal(raw, &reply); err != nil {
			return err
		}
		answer.Workers = append(answer.Workers, api.ReloadWorker{Worker: reply.Worker, Status: reply.Status, Problems: reply.Problems,
			Topics: reply.Topics, Queries: reply.Queries, LoadedAt: reply.LoadedAt})
		if reply.Status == events.ReloadRefused {
			answer.Status, answer.Problems = events.ReloadRefused, reply.Problems
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	answer.Expected, answer.Answered = expected, answered
	switch {
	case answer.Status == events.ReloadRefused:
		doc := problem.New(problem.Unprocessable, "the topics, allow-list or saved queries have problems: nothing was reloaded, the previous set stays in force").Doc()
		doc.Instance, doc.RequestID = r.URL.Path, requestid.From(r.Context())
		w.Header().Set("Content-Type", problem.ContentType)
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(api.ReloadRefusal{Document: doc, Problems: answer.Problems, Workers: answer.Workers})
	case answered < expected:
		h.fail(w, r, problem.New(problem.Timeout, "%d of %d workers answered in time; ask again to check the others", answered, expected))
	default:
		answer.Status = events.ReloadReloaded
		writeJSON(w, http.StatusOK, answer)
	}
}
