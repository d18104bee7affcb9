package ingress

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

func (h *handlers) listTopics(w http.ResponseWriter, r *http.Request) {
	req := events.TopicsListRequest{Header: events.NewHeader(events.TypeTopicsListRequest), Locale: language(r)}
	switch p := r.URL.Query().Get("platform"); p {
	case "", "Windows", "macOS":
		req.Platform = p
	default:
		h.fail(w, r, problem.InvalidField("platform", "want Windows or macOS, got %q", p))
		return
	}
	var reply events.TopicsListReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.TopicsList), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	contentLanguage(w, req.Locale)
	writeJSON(w, http.StatusOK, api.Topics{Topics: reply.Topics})
}

func (h *handlers) getTopic(w http.ResponseWriter, r *http.Request) {
	req := events.TopicsGetRequest{Header: events.NewHeader(events.TypeTopicsGetRequest), Topic: mux.Vars(r)["topic"], Locale: language(r)}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.TopicsGetReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.TopicsGet), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	contentLanguage(w, req.Locale)
	writeJSON(w, http.StatusOK, reply.Topic)
}
