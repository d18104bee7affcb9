package proactive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/wire"
	"github.com/dexbridge/dexbridge/services/proactive"
)

const callbackSecret = "callback-secret-4b7e2a91"

// record opens one event per user, as the webhooks worker would, with a callback
// delivery each.
func record(t *testing.T, db *store.DB, users ...string) []store.ProactiveEvent {
	t.Helper()
	var out []store.ProactiveEvent
	for _, u := range users {
		key := "test:id:" + u + fmt.Sprint(time.Now().UnixNano())
		applied, err := db.ApplyWebhook(context.Background(),
			store.WebhookRecord{DedupeKey: key, WebhookID: "wh_0123456789abcdef0123456789abcdef", Source: "nexthink",
				ReceivedAt: time.Now(), Outcome: store.WebhookOpened, Monitor: "Outlook crashes", AlertStatus: "open"},
			store.ProactiveEffects{Callback: true, Open: []store.NewProactiveEvent{{
				ID: fmt.Sprintf("pe_%032x", time.Now().UnixNano()), Topic: "outlook", SubjectKey: "user:" + u, UserName: u,
				DeviceName: "PC-" + u, Alert: []byte(`{"status":"open"}`), Remediations: []byte(`[]`), Message: "Hi " + u,
				SuppressionWindow: time.Hour,
			}}},
			wire.ProactiveDelivery)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, applied.Opened...)
	}
	return out
}

// target is a chatbot's callback endpoint that can be taken down (its listener
// closed: connections refused) and brought back on the same address.
type target struct {
	t      *testing.T
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	srv    *http.Server
	status int // the answer while up
	got    []received
}

type received struct {
	deliveryID string
	body       events.ProactiveEventChanged
	sigOK      bool
}

func newTarget(t *testing.T) *target {
	tg := &target{t: t, status: http.StatusNoContent}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg.addr = ln.Addr().String()
	tg.serve(ln)
	t.Cleanup(tg.down)
	return tg
}

func (tg *target) url() string { return "http://" + tg.addr + "/dexbridge/events?token=q" }

func (tg *target) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(tg.handle), ReadHeaderTimeout: time.Second}
	tg.ln, tg.srv = ln, srv
	go func() { _ = srv.Serve(ln) }()
}

func (tg *target) handle(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	// What a chatbot must do: verify the signature over the raw body.
	sigOK := signature.Verify([]byte(callbackSecret), r.Header.Get("X-Dexbridge-Signature"), raw, time.Now(), 5*time.Minute) == nil
	var body events.ProactiveEventChanged
	_ = json.Unmarshal(raw, &body)
	tg.mu.Lock()
	status := tg.status
	if status < 300 {
		tg.got = append(tg.got, received{deliveryID: r.Header.Get("X-Dexbridge-Delivery-Id"), body: body, sigOK: sigOK})
	}
	tg.mu.Unlock()
	w.WriteHeader(status)
}

func (tg *target) setStatus(s int) {
	tg.mu.Lock()
	tg.status = s
	tg.mu.Unlock()
}

func (tg *target) down() {
	if tg.srv != nil {
		_ = tg.srv.Close()
		tg.srv = nil
	}
}

func (tg *target) up() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly
		if ln, err = net.Listen("tcp", tg.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tg.t.Fatal(err)
	}
	tg.serve(ln)
}

func (tg *target) received() []received {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]received(nil), tg.got...)
}

func dispatcher(t *testing.T, db *store.DB, url string, mod func(*proactive.DispatcherOptions)) func() {
	t.Helper()
	o := proactive.DispatcherOptions{DB: db, URL: url, Secret: []byte(callbackSecret), Config: proactive.DefaultConfig(), Log: logging.Discard()}
	o.MaxAttempts, o.BackoffInitial, o.BackoffMax, o.Timeout = 20, 20*time.Millisecond, 200*time.Millisecond, 2*time.Second
	o.PollInterval, o.ShutdownTimeout = 50*time.Millisecond, 5*time.Second
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proactive.NewDispatcher(o).Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("dispatcher: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deliveries(t *testing.T, db *store.DB) []store.ProactiveDelivery {
	t.Helper()
	ds, err := db.ProactiveDeliveries(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestCallbackTargetDownAndBack takes the chatbot down (connections refused, then
// 503s) and brings it back: every event is delivered, signed, once, and every
// attempt is recorded with its outcome and duration.
func TestCallbackTargetDownAndBack(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t)
	tg.down()
	evs := record(t, db, "hjordan", "pparker", "asmith")
	dispatcher(t, db, tg.url(), nil)
	waitFor(t, "failed attempts while down", func() bool {
		for _, d := range deliveries(t, db) {
			if d.Attempts < 2 {
				return false
			}
		}
		return true
	})
	tg.setStatus(http.StatusServiceUnavailable)
	tg.up()
	waitFor(t, "503 answers recorded", func() bool {
		for _, d := range deliveries(t, db) {
			if d.LastStatus == nil || *d.LastStatus != 503 {
				return false
			}
		}
		return true
	})
	tg.setStatus(http.StatusNoContent)
	// The chatbot has an event before the dispatcher records its answer: wait for both.
	waitFor(t, "every event delivered", func() bool {
		if len(tg.received()) != len(evs) {
			return false
		}
		for _, d := range deliveries(t, db) {
			if d.State != store.DeliveryDelivered {
				return false
			}
		}
		return true
	})

	got := map[string]bool{}
	for _, r := range tg.received() {
		if !r.sigOK {
			t.Errorf("delivery %s: the signature does not verify", r.deliveryID)
		}
		if r.body.ID != r.deliveryID || r.body.Type != events.TypeProactiveEventChanged || r.body.Kind != "opened" {
			t.Errorf("delivery %s: got body id %q type %q kind %q", r.deliveryID, r.body.ID, r.body.Type, r.body.Kind)
		}
		if got[r.body.Event.ID] {
			t.Errorf("event %s delivered twice", r.body.Event.ID)
		}
		got[r.body.Event.ID] = true
	}
	for _, d := range deliveries(t, db) {
		if d.State != store.DeliveryDelivered || d.DeliveredAt == nil {
			t.Errorf("delivery %d: got %s, want delivered", d.ID, d.State)
		}
		attempts, err := db.ProactiveAttempts(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) != d.Attempts || len(attempts) < 4 {
			t.Fatalf("delivery %d: got %d attempts recorded for %d made, want at least 4 (refused, refused, 503, 204)", d.ID, len(attempts), d.Attempts)
		}
		first, last := attempts[0], attempts[len(attempts)-1]
		if first.Status != nil || first.Error == "" {
			t.Errorf("first attempt: got status %v error %q, want no status and the refusal", first.Status, first.Error)
		}
		if last.Status == nil || *last.Status != 204 || last.Error != "" {
			t.Errorf("last attempt: got %v %q, want 204", last.Status, last.Error)
		}
		saw503 := false
		for _, a := range attempts {
			saw503 = saw503 || (a.Status != nil && *a.Status == 503 && a.Error == "HTTP 503")
			if a.DurationMS < 0 || a.StartedAt.IsZero() {
				t.Errorf("attempt %d: got duration %d start %v", a.Attempt, a.DurationMS, a.StartedAt)
			}
		}
		if !saw503 {
			t.Errorf("delivery %d: no 503 attempt recorded", d.ID)
		}
	}
}

func TestDeadLetterAfterMaxAttempts(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t)
	tg.setStatus(http.StatusInternalServerError)
	record(t, db, "hjordan")
	dispatcher(t, db, tg.url(), func(o *proactive.DispatcherOptions) { o.MaxAttempts = 3 })
	waitFor(t, "the delivery dead", func() bool { return deliveries(t, db)[0].State == store.DeliveryDead })
	time.Sleep(300 * time.Millisecond) // no attempt after death
	d := deliveries(t, db)[0]
	attempts, _ := db.ProactiveAttempts(context.Background(), d.ID)
	if d.Attempts != 3 || len(attempts) != 3 || *d.LastStatus != 500 {
		t.Errorf("got %d attempts (%d recorded), last status %v, want 3 and 500", d.Attempts, len(attempts), *d.LastStatus)
	}
}

// TestReplicasShareTheOutbox runs three dispatchers on one outbox: each event is
// delivered once.
func TestReplicasShareTheOutbox(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t)
	var users []string
	for i := range 40 {
		users = append(users, fmt.Sprintf("user%02d", i))
	}
	evs := record(t, db, users...)
	for range 3 {
		dispatcher(t, db, tg.url(), func(o *proactive.DispatcherOptions) { o.Concurrency = 4 })
	}
	waitFor(t, "every event delivered", func() bool { return len(tg.received()) >= len(evs) })
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range tg.received() {
		seen[r.deliveryID]++
	}
	if len(seen) != len(evs) || len(tg.received()) != len(evs) {
		t.Errorf("got %d callbacks for %d deliveries, want %d each once", len(tg.received()), len(seen), len(evs))
	}
}

// TestAckStopsCallbacks: a chatbot that acknowledges an event (having polled it)
// stops its callback retries.
func TestAckStopsCallbacks(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t)
	tg.setStatus(http.StatusBadGateway)
	evs := record(t, db, "hjordan")
	dispatcher(t, db, tg.url(), nil)
	waitFor(t, "a failed attempt", func() bool { return deliveries(t, db)[0].Attempts >= 1 })
	if _, err := db.AckProactiveEvent(context.Background(), evs[0].ID, "key:key_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	// An attempt claimed before the ack may still be on its way: let it meet the
	// failing chatbot, then see that no other comes.
	time.Sleep(300 * time.Millisecond)
	tg.setStatus(http.StatusOK)
	time.Sleep(400 * time.Millisecond)
	if d := deliveries(t, db)[0]; d.State != store.DeliveryCancelled || len(tg.received()) != 0 {
		t.Errorf("got state %s and %d callbacks, want cancelled and none", d.State, len(tg.received()))
	}
}

func TestNoCallbackURLDeliversNothing(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	record(t, db, "hjordan")
	stop := dispatcher(t, db, "", nil)
	time.Sleep(200 * time.Millisecond)
	stop()
	if d := deliveries(t, db)[0]; d.Attempts != 0 || d.State != store.DeliveryPending {
		t.Errorf("got %d attempts, state %s, want none and pending", d.Attempts, d.State)
	}
}
