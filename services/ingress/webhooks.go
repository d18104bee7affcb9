package ingress

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/cursor"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/requestid"
	"github.com/dexbridge/dexbridge/internal/store"
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

// listWebhookDeliveries answers GET /api/v1/webhooks/deliveries: the webhooks that
// arrived, newest first, and what became of each.
func (h *handlers) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil || h.opts.Webhooks.o.Ledger == nil {
		h.fail(w, r, problem.New(problem.NotFound, "webhooks are not received here"))
		return
	}
	q, after, err := parseDeliveriesQuery(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.opts.Webhooks.Deliveries(r.Context(), q, after)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// parseDeliveriesQuery reads the listing's parameters: source, outcome, since (RFC
// 3339), limit (1 to 1000, default 100) and cursor. Anything else is refused, naming it.
func parseDeliveriesQuery(v url.Values) (store.WebhookQuery, string, error) {
	q := store.WebhookQuery{Limit: 100}
	for name, vals := range v {
		if name == "" {
			return q, "", problem.InvalidField("query", "a parameter has no name")
		}
		if !slices.Contains([]string{"source", "outcome", "since", "limit", "cursor"}, name) {
			return q, "", problem.InvalidField(clipParam(name), "unknown parameter %q: use source, outcome, since, limit and cursor", clipParam(name))
		}
		if len(vals) > 1 {
			return q, "", problem.InvalidField(name, "give %s once", name)
		}
	}
	if s := v.Get("source"); s != "" {
		if !sourceName.MatchString(s) {
			return q, "", problem.InvalidField("source", "a source name is lowercase letters, digits, - and _")
		}
		q.Source = s
	}
	if s := v.Get("outcome"); s != "" {
		if !slices.Contains(store.WebhookOutcomes(), s) {
			return q, "", problem.InvalidField("outcome", "want one of %s", strings.Join(store.WebhookOutcomes(), ", "))
		}
		q.Outcome = s
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, "", problem.InvalidField("since", "want an RFC 3339 time such as 2026-01-02T03:04:05Z")
		}
		t = t.UTC()
		q.Since = &t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, "", problem.InvalidField("limit", "want 1 to 1000")
		}
		q.Limit = n
	}
	return q, v.Get("cursor"), nil
}

// clipParam is a parameter's name fit to be quoted back: short, valid UTF-8.
func clipParam(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// deliveriesCursorPurpose names the deployment's key of the listing's cursors.
const deliveriesCursorPurpose = "webhooks.deliveries.cursor"

// cursorKey loads the deployment's cursor key once and keeps it.
type cursorKey struct {
	mu  sync.Mutex
	key []byte
}

func (k *cursorKey) codec(ctx context.Context, l WebhookLedger) (cursor.Codec, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		key, err := l.SigningKey(ctx, deliveriesCursorPurpose)
		if err != nil {
			return cursor.Codec{}, err
		}
		k.key = key
	}
	return cursor.New(k.key, deliveriesCursorPurpose), nil
}

// deliveriesScope binds a cursor to the listing's filters.
func deliveriesScope(q store.WebhookQuery) []byte {
	since := ""
	if q.Since != nil {
		since = q.Since.Format(time.RFC3339Nano)
	}
	return cursor.Scope(q.Source, q.Outcome, since)
}

// Deliveries is a page of the webhooks received that q selects, after the position
// the cursor after holds ("" from the newest).
func (r *WebhookReceiver) Deliveries(ctx context.Context, q store.WebhookQuery, after string) (api.WebhookDeliveries, error) {
	unavailable := func(err error) error {
		return problem.Wrap(problem.ServiceUnavailable, err, "the webhooks received cannot be read right now").Retry(2 * time.Second)
	}
	codec, err := r.keys.codec(ctx, r.o.Ledger)
	if err != nil {
		return api.WebhookDeliveries{}, unavailable(err)
	}
	scope := deliveriesScope(q)
	if after != "" {
		pos, ok := codec.Open(scope, after)
		if !ok || len(pos) != 8 {
			return api.WebhookDeliveries{}, problem.InvalidField("cursor",
				"not a cursor of this listing with these filters: pass next_cursor as given, with the same source, outcome and since")
		}
		q.Before = int64(binary.BigEndian.Uint64(pos))
	}
	limit := q.Limit
	q.Limit++ // one more tells whether a next page exists
	rows, err := r.o.Ledger.ListWebhookDeliveries(ctx, q)
	if err != nil {
		return api.WebhookDeliveries{}, unavailable(err)
	}
	out := api.WebhookDeliveries{Deliveries: make([]api.WebhookDelivery, 0, min(len(rows), limit))}
	for i, d := range rows {
		if i == limit {
			next := codec.Seal(scope, binary.BigEndian.AppendUint64(nil, uint64(rows[i-1].Seq)))
			out.NextCursor = &next
			break
		}
		out.Deliveries = append(out.Deliveries, webhookDelivery(d))
	}
	return out, nil
}

// webhookDelivery is a webhook's record as the listing shows it.
func webhookDelivery(d store.WebhookDelivery) api.WebhookDelivery {
	out := api.WebhookDelivery{ID: d.WebhookID, Source: d.Source, DeliveryID: d.DeliveryID, DedupeKey: d.DedupeKey,
		ReceivedAt: d.ReceivedAt.UTC(), ProcessedAt: d.ProcessedAt.UTC(), Outcome: d.Outcome, Detail: d.Detail,
		Monitor: d.Monitor, AlertStatus: d.AlertStatus, Attempts: d.Deliveries, Payload: d.Payload,
		Events: make([]api.WebhookDeliveryEvent, 0, len(d.Events))}
	for _, e := range d.Events {
		out.Events = append(out.Events, api.WebhookDeliveryEvent{ID: e.ID, Status: e.Status, Employee: e.UserName,
			Device: e.DeviceName, Assessment: e.Assessment, Detail: e.Detail})
	}
	return out
}
