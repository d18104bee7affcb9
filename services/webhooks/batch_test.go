package webhooks_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
	"github.com/dexbridge/dexbridge/services/webhooks"
)

// inBatches starts a worker that takes the stream's backlog in batches of up to
// size, waiting long enough for each to fill (and less than AckWait).
func (e *env) inBatches(t *testing.T, size int, mod func(*webhooks.Options)) *worker {
	t.Helper()
	return e.startWorker(t, func(o *webhooks.Options) {
		o.Concurrency, o.Batch = size, size
		webhooks.SetBatchLinger(o, 300*time.Millisecond)
		if mod != nil {
			mod(o)
		}
	})
}

// accepted posts a webhook and returns its id.
func accepted(t *testing.T, a answer) string {
	t.Helper()
	if a.status != 202 {
		t.Fatalf("got %d %v, want 202", a.status, a.body)
	}
	return a.body["id"].(string)
}

// batchesLogged are the sizes of the batches the worker's log names.
func batchesLogged(logs string) map[int]int {
	out := map[int]int{}
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `"msg":"webhook processed"`) {
			continue
		}
		var n int
		if i := strings.Index(l, `"batch":`); i >= 0 {
			_, _ = fmt.Sscanf(l[i+len(`"batch":`):], "%d", &n)
		}
		out[n]++
	}
	return out
}

// TestOneBatchAsOneByOne: a backlog taken as one batch has the effects it has one
// webhook at a time, in the stream's order: the second alert of an employee and
// monitor is suppressed by the first of the same batch, a recovery closes the event
// opened earlier in the batch, an alert after it is still suppressed (the employee
// was told), unknown devices are unresolved, a device's users each get an event,
// an unmapped monitor is ignored; feed positions follow the stream's order; each
// subscription gets the changes its filters take, in its locale; and cached devices
// of both tenants' names resolve on the source's instance only.
func TestOneBatchAsOneByOne(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	ctx := context.Background()
	if err := e.pool.EnsureConfigSubscription(ctx, "http://127.0.0.1:9/callback"); err != nil {
		t.Fatal(err)
	}
	fr, err := e.pool.CreateSubscription(ctx, store.NewSubscription{ID: "sub_fr", URL: "http://127.0.0.1:9/fr",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Locale: "fr", Monitors: []string{"onedrive NOT running"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.pool.CreateSubscription(ctx, store.NewSubscription{ID: "sub_us", URL: "http://127.0.0.1:9/us",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Instances: []string{"us"}})
	if err != nil {
		t.Fatal(err)
	}

	nx := func(monitor, status, device, user, at string) string {
		return accepted(t, e.nexthink(t, alert(monitor, status, device, user, at), nil))
	}
	ids := []string{
		nx("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:00:00"),
		nx("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:01:00"),
		nx("OneDrive not running", "open", "PC-ONEDRIVE", "", "2026-01-02 03:02:00"),
		nx("Slow PC", "open", "PC-SHARED", "", "2026-01-02 03:03:00"),
		nx("Slow PC", "open", "PC-NOT-CACHED", "", "2026-01-02 03:04:00"),
		nx("Slow PC", "open", "PC-NOBODY", "", "2026-01-02 03:05:00"),
		nx("Printer on fire", "open", "PC-ONEDRIVE", "", "2026-01-02 03:06:00"),
		nx("Outlook crashes", "closed", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:07:00"),
		nx("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:08:00"),
		nx("Low disk space", "closed", "PC-LOW-DISK", "", "2026-01-02 03:09:00"),
	}
	e.inBatches(t, 32, nil)
	// A webhook is logged once its batch has committed and published: wait for the
	// log, not only the records.
	waitFor(t, "every webhook recorded and logged", func() bool {
		logged := 0
		for _, n := range batchesLogged(e.logs.String()) {
			logged += n
		}
		return len(e.deliveries(t)) == len(ids) && logged == len(ids)
	})
	if got := batchesLogged(e.logs.String()); got[len(ids)] != len(ids) {
		t.Fatalf("batches logged %v, want one batch of %d", got, len(ids))
	}

	outcomes := map[string]string{}
	for _, d := range e.deliveries(t) {
		outcomes[d.WebhookID] = d.Outcome
	}
	want := []string{store.WebhookOpened, store.WebhookSuppressed, store.WebhookOpened, store.WebhookOpened,
		store.WebhookUnresolved, store.WebhookUnresolved, store.WebhookIgnored, store.WebhookClosed, store.WebhookSuppressed,
		store.WebhookNothingToClose}
	for i, id := range ids {
		if outcomes[id] != want[i] {
			t.Errorf("webhook %d: got %s, want %s", i, outcomes[id], want[i])
		}
	}

	evs := e.events(t)
	byWebhook := map[string][]store.ProactiveEvent{}
	for _, ev := range evs {
		byWebhook[ev.WebhookID] = append(byWebhook[ev.WebhookID], ev)
	}
	first, second, again := byWebhook[ids[0]], byWebhook[ids[1]], byWebhook[ids[8]]
	if len(first) != 1 || first[0].Status != store.ProactiveClosed || first[0].ClosedBy == "" {
		t.Fatalf("first alert: got %+v, want one event, closed by the recovery", first)
	}
	if len(second) != 1 || second[0].Status != store.ProactiveSuppressed || second[0].SuppressedBy != first[0].ID {
		t.Errorf("second alert: got %+v, want suppressed by %s", second, first[0].ID)
	}
	if len(again) != 1 || again[0].Status != store.ProactiveSuppressed || again[0].SuppressedBy != first[0].ID {
		t.Errorf("alert after the recovery: got %+v, want suppressed by %s", again, first[0].ID)
	}
	if shared := byWebhook[ids[3]]; len(shared) != 1 || shared[0].UserName != "bwayne" {
		t.Errorf("shared device: got %+v, want one event for its latest user (max_users_per_device 1)", shared)
	}
	// Feed positions: the stream's order, the recovery's closing last of all.
	var last int64
	for _, id := range ids {
		for _, ev := range byWebhook[id] {
			if ev.FeedSeq == nil || ev.Status == store.ProactiveClosed {
				continue
			}
			if *ev.FeedSeq <= last {
				t.Errorf("event %s of %s: feed position %d after %d", ev.ID, id, *ev.FeedSeq, last)
			}
			last = *ev.FeedSeq
		}
	}
	if first[0].FeedSeq == nil || *first[0].FeedSeq <= last {
		t.Errorf("the closed event's feed position %v, want after %d (its recovery came after them)", first[0].FeedSeq, last)
	}

	// Callbacks: the configured subscription takes every change sent (the first
	// opened then closed, OneDrive, the shared device); the French one only
	// OneDrive, in French; the one of instance us none.
	ds, err := e.pool.ProactiveDeliveries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	per := map[string][]store.ProactiveDelivery{}
	for _, d := range ds {
		per[d.SubscriptionID] = append(per[d.SubscriptionID], d)
	}
	if got := len(per[store.ConfigSubscriptionID]); got != 4 {
		t.Errorf("configured callback: got %d deliveries, want 4", got)
	}
	if got := per[fr.ID]; len(got) != 1 || got[0].Locale != "fr" || got[0].EventID != byWebhook[ids[2]][0].ID ||
		!strings.Contains(got[0].Body, wire.DeliveryID(got[0].ID)) {
		t.Errorf("French subscription: got %+v, want the OneDrive event in French", got)
	}
	if got := per[other.ID]; len(got) != 0 {
		t.Errorf("subscription of instance us: got %d deliveries, want none", len(got))
	}
	seen := map[int64]bool{}
	for _, d := range ds {
		if seen[d.ID] {
			t.Errorf("delivery id %d twice", d.ID)
		}
		seen[d.ID] = true
		if !strings.Contains(d.Body, wire.DeliveryID(d.ID)) {
			t.Errorf("delivery %d: its body does not name it: %.200s", d.ID, d.Body)
		}
	}
}

// selectiveResolver resolves through the cache, one device at a time, but fails
// every lookup of one device, like a poison webhook among good ones.
type selectiveResolver struct {
	cache  webhooks.CacheResolver
	poison string
	calls  atomic.Int32
}

func (s *selectiveResolver) DevicesOfUser(ctx context.Context, instance, user string) (*webhooks.Employee, []webhooks.Device, error) {
	return s.cache.DevicesOfUser(ctx, instance, user)
}

func (s *selectiveResolver) UsersOfDevice(ctx context.Context, instance, device string) (*webhooks.Device, []webhooks.Employee, error) {
	if device == s.poison {
		s.calls.Add(1)
		return nil, nil, fmt.Errorf("device %s cannot be looked up", device)
	}
	return s.cache.UsersOfDevice(ctx, instance, device)
}

// TestBatchWithAPoisonMessage: a batch holding an undecodable stream message and a
// webhook whose processing keeps failing records the others at once; the failing
// one is retried alone until its deliveries are used up, then recorded as failed;
// the undecodable one is recorded as invalid; nothing stays pending.
func TestBatchWithAPoisonMessage(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	good := []string{
		accepted(t, e.nexthink(t, alert("Slow PC", "open", "PC-SHARED", "", ""), nil)),
		accepted(t, e.nexthink(t, alert("Slow PC", "open", "PC-ONEDRIVE", "", ""), nil)),
	}
	poison := accepted(t, e.nexthink(t, alert("Slow PC", "open", "PC-LOW-DISK", "", ""), nil))
	if _, err := e.js.Publish(context.Background(), e.subjects.Of(events.WebhooksReceived, "nexthink"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	good = append(good, accepted(t, e.nexthink(t, alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "", ""), nil)))
	res := &selectiveResolver{cache: webhooks.CacheResolver{DB: e.pool}, poison: "PC-LOW-DISK"}
	e.inBatches(t, 8, func(o *webhooks.Options) { o.Resolver = res; o.MaxDeliveries = 3 })

	waitFor(t, "every webhook recorded", func() bool { return len(e.deliveries(t)) == 5 })
	waitFor(t, "nothing pending", func() bool {
		cons, err := e.js.Consumer(context.Background(), e.subjects.Stream(events.StreamWebhooks), webhooks.ConsumerName)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if got := batchesLogged(e.logs.String()); got[4] != 3 {
		t.Errorf("batches logged %v, want the three good webhooks processed in a batch of 4 (the undecodable one dealt with first)", got)
	}
	if got := res.calls.Load(); got != 3 {
		t.Errorf("the poison device looked up %d times, want 3 (one per delivery)", got)
	}
	byID := map[string]store.WebhookDelivery{}
	invalid := 0
	for _, d := range e.deliveries(t) {
		byID[d.WebhookID] = d
		if d.Outcome == store.WebhookInvalid && strings.Contains(d.Detail, "undecodable") {
			invalid++
		}
	}
	for _, id := range good {
		if d := byID[id]; d.Outcome != store.WebhookOpened || d.Deliveries != 1 {
			t.Errorf("good webhook %s: got %s after %d deliveries, want opened after 1", id, d.Outcome, d.Deliveries)
		}
	}
	if d := byID[poison]; d.Outcome != store.WebhookFailed || d.Deliveries != 3 || !strings.Contains(d.Detail, "cannot be looked up") {
		t.Errorf("poison webhook: got %s after %d deliveries (%s), want failed after 3", d.Outcome, d.Deliveries, d.Detail)
	}
	if invalid != 1 {
		t.Errorf("got %d undecodable messages recorded, want 1", invalid)
	}
	evs := e.events(t)
	if len(evs) != 3 {
		t.Errorf("got %d events, want one per good webhook", len(evs))
	}
}

// TestDuplicateWithinABatch: the same webhook twice in the stream (accepted again
// after JetStream's window) and taken in one batch is processed once: one record,
// one event, one callback; the second copy is acked as a duplicate.
func TestDuplicateWithinABatch(t *testing.T) {
	e := newEnv(t, envOptions{duplicateWindow: 300 * time.Millisecond, noSeen: true})
	loadCache(t, e.pool, theFleet...)
	if err := e.pool.EnsureConfigSubscription(context.Background(), "http://127.0.0.1:9/callback"); err != nil {
		t.Fatal(err)
	}
	payload := alert("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:00:00")
	id := accepted(t, e.nexthink(t, payload, nil))
	other := accepted(t, e.nexthink(t, alert("Slow PC", "open", "PC-ONEDRIVE", "", ""), nil))
	// The window is counted by the server's own timer: send until it has passed.
	waitFor(t, "the same webhook accepted again", func() bool {
		again := e.nexthink(t, payload, nil)
		return again.status == 202 && again.body["duplicate"] == false
	})
	e.inBatches(t, 8, nil)
	waitFor(t, "three copies processed", func() bool { return len(e.deliveries(t)) == 2 && batchesLogged(e.logs.String())[3] == 3 })
	ds := e.deliveries(t)
	if len(ds) != 2 {
		t.Fatalf("got %d records, want 2", len(ds))
	}
	per := map[string]int{}
	for _, ev := range e.events(t) {
		per[ev.WebhookID]++
	}
	if per[id] != 1 || per[other] != 1 {
		t.Errorf("events per webhook: got %v, want one each", per)
	}
	cbs, err := e.pool.ProactiveDeliveries(context.Background(), "")
	if err != nil || len(cbs) != 2 {
		t.Errorf("got %d callbacks (%v), want 2", len(cbs), err)
	}
	if n := strings.Count(e.logs.String(), `"outcome":"duplicate"`); n != 1 {
		t.Errorf("got %d duplicates logged, want 1", n)
	}
}

// TestWorkerKilledMidBatch: a worker dies after its batch's commit and before any
// of its acks; the next worker gets the whole batch again and changes nothing: each
// webhook has one record, one event and one callback.
func TestWorkerKilledMidBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	if err := e.pool.EnsureConfigSubscription(context.Background(), "http://127.0.0.1:9/callback"); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var ids []string
	devices := []string{"PC-OUTLOOK-PLUGIN", "PC-ONEDRIVE", "PC-LOW-DISK", "PC-NOT-CACHED", "PC-NOBODY"}
	for i := range n {
		ids = append(ids, accepted(t, e.nexthink(t, alert("Slow PC", "open", devices[i%len(devices)], fmt.Sprintf("user%02d", i),
			fmt.Sprintf("2026-01-02 03:%02d:00", i)), nil)))
	}
	var killed atomic.Bool
	var first *worker
	ready := make(chan struct{})
	first = e.inBatches(t, n, func(o *webhooks.Options) {
		webhooks.SetAfterCommit(o, func(events.WebhookReceived) {
			if killed.CompareAndSwap(false, true) {
				<-ready
				first.nc.Close() // no ack of this batch is ever sent
			}
		})
	})
	close(ready)
	waitFor(t, "the first worker to die after its batch's commit", killed.Load)
	first.stop()
	if got := len(e.deliveries(t)); got != n {
		t.Fatalf("the first worker's batch recorded %d of %d webhooks, want all (one commit)", got, n)
	}
	before := len(e.events(t))

	e.startWorker(t, nil)
	waitFor(t, "the stream drained (the batch redelivered and acked)", func() bool {
		s, _ := e.js.Stream(context.Background(), e.subjects.Stream(events.StreamWebhooks))
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
	if got := strings.Count(e.logs.String(), `"outcome":"duplicate"`); got != n {
		t.Errorf("got %d redeliveries seen as duplicates, want %d", got, n)
	}
	records := map[string]int{}
	for _, d := range e.deliveries(t) {
		records[d.WebhookID]++
	}
	evs := e.events(t)
	perWebhook := map[string]int{}
	for _, ev := range evs {
		perWebhook[ev.WebhookID]++
	}
	for _, id := range ids {
		if records[id] != 1 || perWebhook[id] != 1 {
			t.Errorf("webhook %s: got %d records and %d events, want 1 and 1", id, records[id], perWebhook[id])
		}
	}
	if len(evs) != before {
		t.Errorf("got %d events after the redelivery, %d before: want no change", len(evs), before)
	}
	cbs, err := e.pool.ProactiveDeliveries(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	perEvent := map[string]int{}
	for _, c := range cbs {
		perEvent[c.EventID]++
	}
	for _, ev := range evs {
		want := 0
		if ev.Status == store.ProactiveOpen {
			want = 1
		}
		if perEvent[ev.ID] != want {
			t.Errorf("event %s (%s): got %d callbacks, want %d", ev.ID, ev.Status, perEvent[ev.ID], want)
		}
	}
}

// TestFailedBatchRecordedOneByOne: when a batch's transaction fails (here every
// statement recording more than one webhook at once), each webhook of the batch is
// recorded on its own, on the same delivery: each is processed once, with the
// effects it has in a batch (the recovery closes the event opened before it),
// one record, one event and one callback per change, and nothing is redelivered.
func TestFailedBatchRecordedOneByOne(t *testing.T) {
	e := newEnv(t, envOptions{})
	loadCache(t, e.pool, theFleet...)
	ctx := context.Background()
	if err := e.pool.EnsureConfigSubscription(ctx, "http://127.0.0.1:9/callback"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE FUNCTION one_webhook_at_a_time() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF (SELECT count(*) FROM recorded) > 1 THEN
				RAISE EXCEPTION 'more than one webhook in one statement';
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER one_webhook_at_a_time AFTER INSERT ON webhook_deliveries
			REFERENCING NEW TABLE AS recorded FOR EACH STATEMENT EXECUTE FUNCTION one_webhook_at_a_time()`,
	} {
		if _, err := e.pool.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	nx := func(monitor, status, device, user, at string) string {
		return accepted(t, e.nexthink(t, alert(monitor, status, device, user, at), nil))
	}
	ids := []string{
		nx("Outlook crashes", "open", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:00:00"),
		nx("OneDrive not running", "open", "PC-ONEDRIVE", "", "2026-01-02 03:01:00"),
		nx("Printer on fire", "open", "PC-ONEDRIVE", "", "2026-01-02 03:02:00"),
		nx("Outlook crashes", "closed", "PC-OUTLOOK-PLUGIN", "hjordan", "2026-01-02 03:03:00"),
		nx("Slow PC", "open", "PC-NOT-CACHED", "", "2026-01-02 03:04:00"),
	}
	e.inBatches(t, 8, nil)
	waitFor(t, "nothing pending", func() bool {
		cons, err := e.js.Consumer(ctx, e.subjects.Stream(events.StreamWebhooks), webhooks.ConsumerName)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && len(e.deliveries(t)) == len(ids)
	})
	logs := e.logs.String()
	if n := strings.Count(logs, "webhook batch not recorded at once, recording each on its own"); n != 1 {
		t.Errorf("got %d failed batches logged, want 1", n)
	}
	if got := batchesLogged(logs); got[len(ids)] != len(ids) {
		t.Errorf("batches logged %v, want one batch of %d", got, len(ids))
	}
	processed := map[string]int{}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"msg":"webhook processed"`) {
			for _, id := range ids {
				if strings.Contains(l, `"webhook_id":"`+id+`"`) {
					processed[id]++
				}
			}
		}
	}
	for _, id := range ids {
		if processed[id] != 1 {
			t.Errorf("webhook %s: processed %d times, want once", id, processed[id])
		}
	}
	if n := strings.Count(logs, `"msg":"webhook processing failed`); n != 0 {
		t.Errorf("got %d webhooks to retry, want none", n)
	}

	outcomes := map[string]store.WebhookDelivery{}
	for _, d := range e.deliveries(t) {
		outcomes[d.WebhookID] = d
	}
	want := []string{store.WebhookOpened, store.WebhookOpened, store.WebhookIgnored, store.WebhookClosed, store.WebhookUnresolved}
	for i, id := range ids {
		if d := outcomes[id]; d.Outcome != want[i] || d.Deliveries != 1 {
			t.Errorf("webhook %d: got %s after %d deliveries, want %s after 1", i, d.Outcome, d.Deliveries, want[i])
		}
	}
	per := map[string][]store.ProactiveEvent{}
	for _, ev := range e.events(t) {
		per[ev.WebhookID] = append(per[ev.WebhookID], ev)
	}
	if evs := per[ids[0]]; len(evs) != 1 || evs[0].Status != store.ProactiveClosed {
		t.Errorf("Outlook alert: got %+v, want one event, closed by the recovery", evs)
	}
	for _, i := range []int{1, 4} {
		if len(per[ids[i]]) != 1 {
			t.Errorf("webhook %d: got %d events, want 1", i, len(per[ids[i]]))
		}
	}
	if len(per[ids[2]]) != 0 || len(per[ids[3]]) != 0 {
		t.Errorf("the ignored webhook and the recovery: got %d and %d events of their own, want none", len(per[ids[2]]), len(per[ids[3]]))
	}
	// Callbacks: the Outlook event opened, then closed; OneDrive opened.
	cbs, err := e.pool.ProactiveDeliveries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, c := range cbs {
		kinds[c.EventID+" "+c.Kind]++
	}
	wantKinds := map[string]int{per[ids[0]][0].ID + " opened": 1, per[ids[0]][0].ID + " closed": 1, per[ids[1]][0].ID + " opened": 1}
	if len(kinds) != len(wantKinds) {
		t.Errorf("callbacks %v, want %v", kinds, wantKinds)
	}
	for k, n := range wantKinds {
		if kinds[k] != n {
			t.Errorf("callbacks %v, want %v", kinds, wantKinds)
			break
		}
	}
}
