package ingress_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/callbacktest"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

type api struct {
	db       *store.DB
	nc       *nats.Conn
	subjects events.Subjects
	feed     *ingress.ProactiveFeed
	handler  http.Handler
	key      string // read scope
	noScope  string // remediate only
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{db: store.New(testenv.Postgres(t)), nc: testenv.NATS(t), subjects: events.NewSubjects(testenv.Prefix(t))}
	a.feed = ingress.NewProactiveFeed(ingress.ProactiveFeedOptions{DB: a.db, Conn: a.nc, Subjects: a.subjects,
		FeedConfig: ingress.FeedConfig{Heartbeat: 150 * time.Millisecond, Poll: time.Second}, Log: logging.Discard()})
	keys := auth.NewKeys(a.db)
	var err error
	if a.key, _, err = keys.Create(context.Background(), auth.NewKey{Name: "bot", Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if a.noScope, _, err = keys.Create(context.Background(), auth.NewKey{Name: "ops", Scopes: []string{"remediate"}}); err != nil {
		t.Fatal(err)
	}
	a.handler = apitest.New(t).Handler(t, ingress.NewHandler(a.options()))
	return a
}

func (a *api) options() ingress.Options {
	return ingress.Options{Keys: auth.NewKeys(a.db), Credentials: auth.NewCredentials(nil), Limiters: ratelimit.NewShared(a.db),
		Subjects: a.subjects, Log: logging.Discard(), Proactive: a.feed}
}

func (a *api) call(t *testing.T, method, path, key string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, r)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func ids(body map[string]any) []string {
	var out []string
	evs, _ := body["events"].([]any)
	for _, e := range evs {
		out = append(out, e.(map[string]any)["id"].(string))
	}
	return out
}

func TestPollTheFeed(t *testing.T) {
	a := newAPI(t)
	evs := callbacktest.Record(t, a.db, "u1", "u2", "u3")
	tests := []struct {
		path   string
		key    string
		status int
		want   []string
		next   string
	}{
		{"/api/v1/proactive/events", a.key, 200, []string{evs[0].ID, evs[1].ID, evs[2].ID}, "3"},
		{"/api/v1/proactive/events?after=1&limit=1", a.key, 200, []string{evs[1].ID}, "2"},
		{"/api/v1/proactive/events?after=3", a.key, 200, nil, "3"},
		{"/api/v1/proactive/events?after=-1", a.key, 400, nil, ""},
		{"/api/v1/proactive/events?after=abc", a.key, 400, nil, ""},
		{"/api/v1/proactive/events?limit=0", a.key, 400, nil, ""},
		{"/api/v1/proactive/events?limit=1001", a.key, 400, nil, ""},
		{"/api/v1/proactive/events", "", 401, nil, ""},
		{"/api/v1/proactive/events", a.noScope, 403, nil, ""},
	}
	for _, tt := range tests {
		status, body := a.call(t, http.MethodGet, tt.path, tt.key)
		if status != tt.status {
			t.Errorf("%s: got %d %v, want %d", tt.path, status, body, tt.status)
			continue
		}
		if status == 200 && (strings.Join(ids(body), ",") != strings.Join(tt.want, ",") || body["next_cursor"] != tt.next) {
			t.Errorf("%s: got %v next %v, want %v next %s", tt.path, ids(body), body["next_cursor"], tt.want, tt.next)
		}
	}
}

func TestAckAnEvent(t *testing.T) {
	a := newAPI(t)
	evs := callbacktest.Record(t, a.db, "u1")
	path := "/api/v1/proactive/events/" + evs[0].ID + "/ack"
	status, body := a.call(t, http.MethodPost, path, a.key)
	if status != 200 || body["acked_at"] == nil {
		t.Fatalf("got %d %v, want 200 with acked_at", status, body)
	}
	first := body["acked_at"]
	if status, body = a.call(t, http.MethodPost, path, a.key); status != 200 || body["acked_at"] != first {
		t.Errorf("second ack: got %d acked_at %v, want 200 and the first time %v", status, body["acked_at"], first)
	}
	for _, tt := range []struct {
		path, key string
		status    int
	}{
		{"/api/v1/proactive/events/pe_00000000000000000000000000000000/ack", a.key, 404},
		{"/api/v1/proactive/events/nope/ack", a.key, 404},
		{path, "", 401},
		{path, a.noScope, 403},
	} {
		if status, body := a.call(t, http.MethodPost, tt.path, tt.key); status != tt.status {
			t.Errorf("%s: got %d %v, want %d", tt.path, status, body, tt.status)
		}
	}
}

// sse reads server-sent events from a real listener.
type sse struct {
	resp  *http.Response
	lines chan string
}

func openStream(t *testing.T, base, key, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/proactive/stream", nil)
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{resp: resp, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event (id, kind, document), skipping comments.
func (s *sse) next(t *testing.T) (string, string, events.ProactiveEventChanged, bool) {
	t.Helper()
	var id, kind string
	var doc events.ProactiveEventChanged
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return "", "", doc, false
			}
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &doc); err != nil {
					t.Fatal(err)
				}
			case line == "" && id != "":
				return id, kind, doc, true
			}
		case <-timeout:
			t.Fatal("no event within 10 s")
		}
	}
}

// TestStream follows the feed: events arrive as they are recorded, a reconnection
// with Last-Event-ID resumes exactly after the last one seen, idle streams get
// heartbeats, and the streams end when the ingress shuts down.
func TestStream(t *testing.T) {
	a := newAPI(t)
	callbacktest.Record(t, a.db, "before") // before the stream opens: not sent without a cursor
	o := a.options()
	o.Listen, o.ShutdownTimeout = "127.0.0.1:0", 10*time.Second
	addrc := make(chan net.Addr, 1)
	o.OnListen = func(addr net.Addr) { addrc <- addr }
	svc := ingress.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer cancel()
	base := "http://" + (<-addrc).String()

	s := openStream(t, base, a.key, "")
	evs := callbacktest.Record(t, a.db, "u1", "u2")
	id1, kind, doc, _ := s.next(t)
	id2, _, doc2, _ := s.next(t)
	if id1 != "2" || kind != "opened" || doc.Event.ID != evs[0].ID || doc.Type != events.TypeProactiveEventChanged || id2 != "3" || doc2.Event.ID != evs[1].ID {
		t.Fatalf("got %s %s %s then %s %s, want cursors 2 and 3 for %s and %s", id1, kind, doc.Event.ID, id2, doc2.Event.ID, evs[0].ID, evs[1].ID)
	}
	// Heartbeats while idle.
	heartbeat := time.After(5 * time.Second)
	for beat := false; !beat; {
		select {
		case line := <-s.lines:
			beat = strings.HasPrefix(line, ": heartbeat")
		case <-heartbeat:
			t.Fatal("no heartbeat")
		}
	}

	// Resume after cursor 2: the third event comes, then what is recorded next.
	resumed := openStream(t, base, a.key, id1)
	if id, _, d, _ := resumed.next(t); id != "3" || d.Event.ID != evs[1].ID {
		t.Errorf("resumed: got %s %s, want 3 %s", id, d.Event.ID, evs[1].ID)
	} else if d.ID != doc2.ID || !d.Time.Equal(doc2.Time) || d.ID != evs[1].ID+":opened" {
		t.Errorf("replayed change: got id %s time %v, want the first reading's %s %v", d.ID, d.Time, doc2.ID, doc2.Time)
	}
	more := callbacktest.Record(t, a.db, "u3")
	if id, _, d, _ := resumed.next(t); id != "4" || d.Event.ID != more[0].ID {
		t.Errorf("resumed: got %s %s, want 4 %s", id, d.Event.ID, more[0].ID)
	}
	if bad := func() int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/proactive/stream", nil)
		req.Header.Set("X-API-Key", a.key)
		req.Header.Set("Last-Event-ID", "soon")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}(); bad != 400 {
		t.Errorf("bad Last-Event-ID: got %d, want 400", bad)
	}

	// Shutdown ends both streams at once instead of waiting the shutdown timeout.
	start := time.Now()
	cancel()
	for _, st := range []*sse{s, resumed} {
		for range st.lines {
		}
	}
	if err := <-done; err != nil {
		t.Errorf("ingress: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with open streams, want them ended promptly", d)
	}
}
