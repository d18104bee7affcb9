package proactive_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/callbacktest"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/stdwebhooks"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/proactive"
)

const callbackSecret = "callback-secret-4b7e2a91"

// target is a chatbot's callback endpoint (the shared test receiver, which checks
// every Standard Webhooks signature) that can be taken down (its listener closed:
// connections refused) and brought back on the same address.
type target struct {
	*callbacktest.Receiver
	t    *testing.T
	addr string
	srv  *http.Server
}

func newTarget(t *testing.T, secret string) *target {
	tg := &target{Receiver: callbacktest.New(t, secret), t: t}
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
	srv := &http.Server{Handler: tg.Receiver, ReadHeaderTimeout: time.Second}
	tg.srv = srv
	go func() { _ = srv.Serve(ln) }()
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

// configured makes url the configured callback's subscription, as a dispatcher
// does when it starts, so events recorded before one starts are enqueued for it.
func configured(t *testing.T, db *store.DB, url string) {
	t.Helper()
	if err := db.EnsureConfigSubscription(context.Background(), url); err != nil {
		t.Fatal(err)
	}
}

// subscribe stores a subscription made through the API and returns its id.
func subscribe(t *testing.T, db *store.DB, url, secret, locale string, monitors ...string) string {
	t.Helper()
	id := fmt.Sprintf("sub_%024x", time.Now().UnixNano())
	if _, err := db.CreateSubscription(context.Background(), store.NewSubscription{ID: id, URL: url, Secret: secret, Locale: locale,
		Monitors: monitors}); err != nil {
		t.Fatal(err)
	}
	return id
}

func newSecret(t *testing.T) string {
	s, err := stdwebhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loopback lets API subscriptions reach the test's receivers, on 127.0.0.1.
var loopback = netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func dispatcher(t *testing.T, db *store.DB, url string, mod func(*proactive.DispatcherOptions)) func() {
	t.Helper()
	o := proactive.DispatcherOptions{DB: db, URL: url, Secret: []byte(callbackSecret), Policy: loopback,
		Config: proactive.DefaultConfig(), Log: logging.Discard()}
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

// TestCallbackTargetDownAndBack takes the configured callback down (connections
// refused, then 503s) and brings it back: every event is delivered, signed per
// Standard Webhooks and the earlier way, once, and every attempt is recorded with
// its outcome and duration.
func TestCallbackTargetDownAndBack(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t, callbackSecret)
	tg.down()
	configured(t, db, tg.url())
	evs := callbacktest.Record(t, db, "hjordan", "pparker", "asmith")
	dispatcher(t, db, tg.url(), nil)
	waitFor(t, "failed attempts while down", func() bool {
		for _, d := range deliveries(t, db) {
			if d.Attempts < 2 {
				return false
			}
		}
		return true
	})
	tg.SetStatus(http.StatusServiceUnavailable)
	tg.up()
	waitFor(t, "503 answers recorded", func() bool {
		for _, d := range deliveries(t, db) {
			if d.LastStatus == nil || *d.LastStatus != 503 {
				return false
			}
		}
		return true
	})
	tg.SetStatus(http.StatusNoContent)
	// The chatbot has an event before the dispatcher records its answer: wait for both.
	waitFor(t, "every event delivered", func() bool {
		if len(tg.Received()) != len(evs) {
			return false
		}
		for _, d := range deliveries(t, db) {
			if d.State != store.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	if bad := tg.Bad(); len(bad) > 0 {
		t.Errorf("signatures that do not verify: %v", bad)
	}
	got := map[string]bool{}
	for _, r := range tg.Received() {
		// Receivers written before subscriptions keep verifying the earlier signature.
		if err := signature.Verify([]byte(callbackSecret), r.Header.Get(proactive.HeaderSignature), r.Raw, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery %s: earlier signature: %v", r.ID, err)
		}
		if r.Body.ID != r.ID || r.Header.Get(proactive.HeaderDeliveryID) != r.ID || r.Body.Type != events.TypeProactiveEventChanged || r.Body.Kind != "opened" {
			t.Errorf("delivery %s: got body id %q type %q kind %q", r.ID, r.Body.ID, r.Body.Type, r.Body.Kind)
		}
		if r.Language != "en" {
			t.Errorf("delivery %s: Content-Language %q, want en", r.ID, r.Language)
		}
		if got[r.Body.Event.ID] {
			t.Errorf("event %s delivered twice", r.Body.Event.ID)
		}
		got[r.Body.Event.ID] = true
	}
	for _, d := range deliveries(t, db) {
		if d.State != store.DeliveryDelivered || d.DeliveredAt == nil || d.SubscriptionID != store.ConfigSubscriptionID {
			t.Errorf("delivery %d: got %s for %s, want delivered to the configured callback", d.ID, d.State, d.SubscriptionID)
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
	sub, err := db.GetSubscription(context.Background(), store.ConfigSubscriptionID)
	if err != nil || sub.State != store.SubscriptionActive || sub.Failures != 0 || sub.LastSuccessAt == nil || sub.LastError == "" {
		t.Errorf("configured subscription: got %+v %v, want active, failures cleared by the success, the last error kept", sub, err)
	}
}

// TestFailingSubscriptionIsPausedAndResumed: a subscription whose delivery fails
// every attempt is paused, with its failures and last error; what happens while it
// is paused waits (no replica claims it), and resuming it delivers everything.
func TestFailingSubscriptionIsPausedAndResumed(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	secret := newSecret(t)
	tg := newTarget(t, secret)
	tg.SetStatus(http.StatusInternalServerError)
	id := subscribe(t, db, tg.url(), secret, "fr-CH")
	callbacktest.Record(t, db, "hjordan")
	logs := &testenv.LogBuffer{}
	stop := dispatcher(t, db, "", func(o *proactive.DispatcherOptions) {
		o.MaxAttempts = 3
		o.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	waitFor(t, "the subscription paused", func() bool {
		s, err := db.GetSubscription(ctx, id)
		return err == nil && s.State == store.SubscriptionPaused
	})
	stop()
	s, _ := db.GetSubscription(ctx, id)
	d := deliveries(t, db)[0]
	if s.Failures != 3 || s.LastError != "HTTP 500" || s.PausedAt == nil || d.State != store.DeliveryDead || d.Attempts != 3 || tg.Tries() != 3 {
		t.Fatalf("got subscription %+v, delivery %s after %d attempts, %d requests; want paused after 3 failures of HTTP 500",
			s, d.State, d.Attempts, tg.Tries())
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, "token=q") || !strings.Contains(l, "subscription paused") {
		t.Errorf("logs: want the pause logged, without the secret or the URL's query:\n%s", l)
	}
	callbacktest.Record(t, db, "pparker")
	if claimed, err := db.ClaimProactiveDeliveries(ctx, 10, time.Minute); err != nil || len(claimed) != 0 {
		t.Fatalf("paused: claimed %d, %v; want nothing claimable", len(claimed), err)
	}
	if s, _ := db.GetSubscription(ctx, id); s.Pending != 2 {
		t.Errorf("paused: %d pending, want the dead delivery and the new event's kept", s.Pending)
	}
	tg.SetStatus(http.StatusOK)
	if s, err := db.ResumeSubscription(ctx, id); err != nil || s.State != store.SubscriptionActive || s.Failures != 0 {
		t.Fatalf("resume: got %+v %v", s, err)
	}
	dispatcher(t, db, "", func(o *proactive.DispatcherOptions) { o.MaxAttempts = 3 })
	waitFor(t, "both events delivered", func() bool { return len(tg.Received()) == 2 })
	for _, r := range tg.Received() {
		if r.Language != "fr-CH" {
			t.Errorf("delivery %s: Content-Language %q, want the subscription's fr-CH", r.ID, r.Language)
		}
		if r.Header.Get(proactive.HeaderSignature) != "" {
			t.Errorf("delivery %s: a subscription made through the API got the earlier signature", r.ID)
		}
	}
	waitFor(t, "every delivery recorded delivered", func() bool {
		for _, d := range deliveries(t, db) {
			if d.State != store.DeliveryDelivered {
				return false
			}
		}
		return true
	})
}

// TestDeliveryRechecksTheAddress: a subscription whose host now resolves inside
// the network (DNS rebinding; here stored directly) is refused at the connection:
// no request reaches the address, and the attempt records why.
func TestDeliveryRechecksTheAddress(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	secret := newSecret(t)
	tg := newTarget(t, secret)
	id := subscribe(t, db, strings.Replace(tg.url(), "127.0.0.1", "localhost", 1), secret, "en")
	callbacktest.Record(t, db, "hjordan")
	dispatcher(t, db, "", func(o *proactive.DispatcherOptions) { o.Policy = netguard.Policy{AllowHTTP: true} })
	waitFor(t, "a refused attempt", func() bool {
		s, err := db.GetSubscription(context.Background(), id)
		return err == nil && s.Failures >= 1
	})
	s, _ := db.GetSubscription(context.Background(), id)
	if !strings.Contains(s.LastError, "loopback") || tg.Tries() != 0 {
		t.Errorf("got last error %q and %d requests, want a loopback refusal and none", s.LastError, tg.Tries())
	}
}

// TestReplicasShareTheOutbox runs three dispatchers on one outbox with two
// subscriptions and one filtered out: each event reaches each matching
// subscription once, in its locale.
func TestReplicasShareTheOutbox(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	cfg := newTarget(t, callbackSecret)
	secret := newSecret(t)
	api := newTarget(t, secret)
	other := newTarget(t, secret)
	configured(t, db, cfg.url())
	subscribe(t, db, api.url(), secret, "de-CH", "OUTLOOK CRASHES")
	subscribe(t, db, other.url(), secret, "en", "Low disk space")
	var users []string
	for i := range 40 {
		users = append(users, fmt.Sprintf("user%02d", i))
	}
	evs := callbacktest.Record(t, db, users...)
	for range 3 {
		dispatcher(t, db, cfg.url(), func(o *proactive.DispatcherOptions) { o.Concurrency = 4 })
	}
	waitFor(t, "every delivery done", func() bool {
		ds := deliveries(t, db)
		for _, d := range ds {
			if d.State != store.DeliveryDelivered {
				return false
			}
		}
		return len(ds) == 2*len(evs)
	})
	for name, tg := range map[string]*target{"configured": cfg, "api": api} {
		seen := map[string]int{}
		for _, r := range tg.Received() {
			seen[r.Body.Event.ID]++
		}
		if len(seen) != len(evs) || len(tg.Received()) != len(evs) {
			t.Errorf("%s: got %d callbacks for %d events, want %d each once", name, len(tg.Received()), len(seen), len(evs))
		}
	}
	for _, r := range api.Received() {
		if r.Language != "de-CH" {
			t.Errorf("Content-Language %q, want de-CH", r.Language)
		}
	}
	if n := other.Tries(); n != 0 {
		t.Errorf("a subscription to another monitor got %d requests", n)
	}
}

// TestAckStopsCallbacks: a chatbot that acknowledges an event (having polled it)
// stops its callback retries.
func TestAckStopsCallbacks(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	tg := newTarget(t, callbackSecret)
	tg.SetStatus(http.StatusBadGateway)
	configured(t, db, tg.url())
	evs := callbacktest.Record(t, db, "hjordan")
	dispatcher(t, db, tg.url(), nil)
	waitFor(t, "a failed attempt", func() bool { return deliveries(t, db)[0].Attempts >= 1 })
	if _, err := db.AckProactiveEvent(context.Background(), evs[0].ID, "key:key_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery cancelled", func() bool { return deliveries(t, db)[0].State == store.DeliveryCancelled })
	if claimed, err := db.ClaimProactiveDeliveries(context.Background(), 10, time.Minute); err != nil || len(claimed) != 0 {
		t.Errorf("claimed %d after the ack, %v; want nothing", len(claimed), err)
	}
}

// TestNoSubscriptionEnqueuesNothing: without the configured callback or any
// subscription, events are recorded for the feed and nothing is enqueued; a
// dispatcher started without a URL removes the configured callback's subscription.
func TestNoSubscriptionEnqueuesNothing(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	configured(t, db, "https://bot.example.com/hook")
	stop := dispatcher(t, db, "", nil)
	waitFor(t, "the configured subscription removed", func() bool {
		_, err := db.GetSubscription(context.Background(), store.ConfigSubscriptionID)
		return errors.Is(err, store.ErrNotFound)
	})
	stop()
	if evs := callbacktest.Record(t, db, "hjordan"); len(evs) != 1 || len(deliveries(t, db)) != 0 {
		t.Errorf("got %d events and %d deliveries, want 1 and none", len(evs), len(deliveries(t, db)))
	}
}
