package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
)

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// receiveWebhook takes a webhook in: the source's credential first (before the body
// is read), then a JSON object of at most 1 MiB, then the receiver stores it and the
// sender gets 202 only once JetStream has it.
func (h *handlers) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	if h.opts.Webhooks == nil || !sourceName.MatchString(source) {
		h.fail(w, r, problem.New(problem.NotFound, "no webhook source %q", source))
		return
	}
	src, err := h.opts.Webhooks.Authenticate(source, r.Header)
	if err != nil {
		h.webhookFail(w, r, err)
		return
	}
	body, err := readJSONObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	acc, err := h.opts.Webhooks.Accept(r.Context(), src, incomingWebhook{
		Method: r.Method, Header: r.Header, Body: body, ContentType: r.Header.Get("Content-Type"),
		RequestID: requestid.From(r.Context()),
	})
	if err != nil {
		h.webhookFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, acc)
}

func (h *handlers) webhookFail(w http.ResponseWriter, r *http.Request, err error) {
	var d *denied
	if errors.As(err, &d) && d.challenge != "" {
		w.Header().Set("WWW-Authenticate", d.challenge)
	}
	h.fail(w, r, err)
}

// readJSONObject reads a webhook body: application/json (415), at most maxBody
// bytes (413), valid UTF-8 and one JSON object (400). Unknown fields are the point
// of a webhook, so they are kept.
func readJSONObject(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := declaredTooLarge(w, r); err != nil {
		return nil, err
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, problem.New(problem.UnsupportedMedia, "send the webhook as application/json")
	}
	raw, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	if !utf8.Valid(raw) {
		return nil, problem.New(problem.Invalid, "the body is not valid UTF-8")
	}
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return nil, problem.New(problem.Invalid, "the body must be one JSON object")
	}
	return raw, nil
}
