package ingress

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/problem"
)

var proactiveEventID = regexp.MustCompile(`^pe_[0-9a-f]{32}$`)

func (h *handlers) proactiveFeed(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Proactive == nil {
		h.fail(w, r, problem.New(problem.NotFound, "proactive events are not served here"))
		return false
	}
	return true
}

// parseCursor reads a cursor: a non-negative integer.
func parseCursor(field, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, problem.InvalidField(field, "a cursor is a non-negative integer, as returned in next_cursor or an event's cursor")
	}
	return n, nil
}

func (h *handlers) listProactiveEvents(w http.ResponseWriter, r *http.Request) {
	if !h.proactiveFeed(w, r) {
		return
	}
	q := r.URL.Query()
	var after int64
	if s := q.Get("after"); s != "" {
		var err error
		if after, err = parseCursor("after", s); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, r, problem.InvalidField("limit", "want 1 to 1000"))
			return
		}
		limit = n
	}
	evs, next, err := h.opts.Proactive.List(r.Context(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	evs = delegateEvents(r.Context(), evs)
	loc := language(r)
	for i := range evs {
		evs[i] = evs[i].In(loc)
	}
	contentLanguage(w, loc)
	writeJSON(w, http.StatusOK, api.ProactiveEvents{Events: evs, NextCursor: strconv.FormatInt(next, 10)})
}

func (h *handlers) ackProactiveEvent(w http.ResponseWriter, r *http.Request) {
	if !h.proactiveFeed(w, r) {
		return
	}
	id := mux.Vars(r)["id"]
	if !proactiveEventID.MatchString(id) {
		h.fail(w, r, problem.New(problem.NotFound, "no proactive event %q", id))
		return
	}
	var body struct{}
	if err := decodeJSON(w, r, &body, true); err != nil {
		h.fail(w, r, err)
		return
	}
	by := ""
	if p := principalFrom(r.Context()); p != nil {
		by = "key:" + p.KeyID
	}
	ev, err := h.opts.Proactive.Ack(r.Context(), id, by)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	loc := language(r)
	contentLanguage(w, loc)
	writeJSON(w, http.StatusOK, ev.In(loc))
}

// streamProactiveEvents serves the feed as server-sent events: each event as
// "id: <cursor>", "event: <opened|closed>", "data: <JSON>"; a comment line as
// heartbeat. Last-Event-ID (or after=) resumes after a cursor; without either the
// stream starts with the next new event.
func (h *handlers) streamProactiveEvents(w http.ResponseWriter, r *http.Request) {
	if !h.proactiveFeed(w, r) {
		return
	}
	var after int64
	var err error
	switch last, q := r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after"); {
	case last != "":
		after, err = parseCursor("Last-Event-ID", last)
	case q != "":
		after, err = parseCursor("after", q)
	default:
		after, err = h.opts.Proactive.Head(r.Context())
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	hb := h.opts.Proactive.Heartbeat()
	// The server's write timeout is for ordinary answers: a stream extends its own.
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(hb*2 + 10*time.Second)) }
	extend()
	loc := language(r)
	contentLanguage(w, loc)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		extend()
		return rc.Flush()
	}
	fmt.Fprintf(bw, "retry: 3000\n: dexbridge proactive events after %d\n\n", after)
	if err := flush(); err != nil {
		return
	}
	err = h.opts.Proactive.Stream(r.Context(), after,
		func(cursor int64, ev events.ProactiveEventChanged) error {
			ev.Event = ev.Event.In(loc)
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "id: %d\nevent: %s\ndata: %s\n\n", cursor, ev.Kind, data)
			return flush()
		},
		func() error {
			bw.WriteString(": heartbeat " + time.Now().UTC().Format(time.RFC3339) + "\n\n")
			return flush()
		})
	if err != nil {
		h.opts.Log.DebugContext(r.Context(), "proactive stream ended", "err", err)
	}
}
