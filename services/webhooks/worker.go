package webhooks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Config is the worker's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// Concurrency is how many webhooks one worker has in hand at once: they are
	// processed in batches of up to Batch, each batch waiting on PostgreSQL a fixed
	// number of round trips and on its diagnoses (a topics worker, then the tenant).
	Concurrency int
	// Batch is the most webhooks processed together (0: DefaultBatch): their devices
	// resolved in one query, their events and callbacks recorded in one transaction.
	Batch int
	// AckWait is how long JetStream waits for an ack before redelivering; a long
	// diagnosis keeps its message alive with progress acks.
	AckWait time.Duration
	// MaxDeliveries: a webhook that failed this many deliveries is recorded as failed
	// and terminated, not retried forever.
	MaxDeliveries int
	// RetryBase is the first redelivery delay after a failure; it doubles.
	RetryBase time.Duration
	// DiagnosisTimeout bounds the diagnosis run before an event is recorded.
	DiagnosisTimeout time.Duration
	// DuplicateWindow is the WEBHOOKS stream's own dedupe window.
	DuplicateWindow time.Duration
	ShutdownTimeout time.Duration
}

// DefaultBatch is the batch size of a Config that sets none.
const DefaultBatch = 64

// ConfigFrom is the worker's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{Concurrency: c.Webhooks.Concurrency, Batch: DefaultBatch, AckWait: 30 * time.Second, MaxDeliveries: c.Webhooks.MaxDeliveries,
		RetryBase: time.Second, DiagnosisTimeout: 20 * time.Second, DuplicateWindow: c.Webhooks.DuplicateWindow.D(),
		ShutdownTimeout: c.ShutdownTimeout.D()}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// Options are the worker's dependencies and settings.
type Options struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Subjects events.Subjects
	DB       *store.DB
	Rules    *webhookmap.Live
	Resolver Resolver
	// Diagnoser, when set, runs the monitor's topic on the device first; without one,
	// no device is checked.
	Diagnoser Diagnoser
	// Topics, when set, are the topics' platforms: a device of a platform its
	// monitor's topic does not support is not diagnosed; and their texts in other
	// languages, for the events' texts per locale.
	Topics *topic.Catalog
	// Actions, when set, are the remote actions' platforms: a remediation is offered
	// only on a device its remote action supports.
	Actions *allowlist.List
	// Callback enqueues a callback delivery for every event opened or closed.
	Callback bool
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// afterCommit, in tests, runs between a webhook's commit and its ack.
	afterCommit func(events.WebhookReceived)
	// linger, in tests, replaces batchLinger.
	linger time.Duration
}

// Worker processes the WEBHOOKS stream. Replicas share its durable consumer.
type Worker struct {
	o Options
}

// NewWorker returns a worker; Run starts it.
func NewWorker(o Options) *Worker {
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	return &Worker{o: o}
}

// Run consumes until ctx ends, then stops fetching and gives the webhooks in hand
// the shutdown timeout to finish; any still unfinished is redelivered later.
func (w *Worker) Run(ctx context.Context) error {
	// The webhooks in hand run on their own context, cancelled only when the drain
	// time is up.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var inflight sync.WaitGroup
	sem := make(chan struct{}, w.o.Concurrency)
	w.o.Log.Info("webhooks worker started", "consumer", ConsumerName, "concurrency", w.o.Concurrency, "batch", w.batchSize())
	retry := time.Duration(0)
	for ctx.Err() == nil {
		if retry > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			if ctx.Err() != nil {
				break
			}
		}
		err := w.consume(ctx, workCtx, sem, &inflight)
		if err == nil || ctx.Err() != nil {
			break
		}
		retry = min(max(2*retry, 250*time.Millisecond), 5*time.Second)
		w.o.Log.Warn("webhooks consumer interrupted, resuming", "err", err, "retry_in_ms", retry.Milliseconds())
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.o.ShutdownTimeout):
		w.o.Log.Warn("webhooks worker stopping with webhooks in hand; they will be redelivered")
		stopWork()
		<-done
	}
	w.o.Log.Info("webhooks worker stopped")
	return nil
}

// batchSize is the most webhooks processed together: Batch, at most Concurrency.
func (w *Worker) batchSize() int {
	b := w.o.Batch
	if b <= 0 {
		b = DefaultBatch
	}
	return max(min(b, w.o.Concurrency), 1)
}

// batchesAtOnce is how many batches one worker runs at once.
const batchesAtOnce = 2

// batchLinger is how long a batch waits for more messages when the stream had no
// more: long enough for the messages already pulled to join it, too short to matter
// to one webhook's latency.
const batchLinger = 2 * time.Millisecond

// batchGather is the longest a batch waits to fill while the stream says it holds
// more: a batch's store costs about the same whatever its size, so a backlog is
// taken in full batches, not in whatever the reader brought within batchLinger.
const batchGather = 25 * time.Millisecond

// consume pulls messages until ctx ends (nil) or the consumer fails (an error:
// the caller sets things up again). A reader takes a slot of the Concurrency
// webhooks in hand for each message; the loop groups the messages at hand into
// batches of up to batchSize, batchesAtOnce at a time.
func (w *Worker) consume(ctx, workCtx context.Context, sem chan struct{}, inflight *sync.WaitGroup) error {
	stream, err := broker.EnsureStream(ctx, w.o.JS, events.WebhooksStream(w.o.Subjects, w.o.DuplicateWindow))
	if err != nil {
		return fmt.Errorf("webhooks stream: %w", err)
	}
	cons, err := ensureConsumer(ctx, w.o.JS, w.o.Subjects, w.o.AckWait, w.o.MaxDeliveries)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(w.o.Concurrency))
	if err != nil {
		return fmt.Errorf("webhooks consumer: %w", err)
	}
	// Stop discards what is buffered here and not yet handed out: the server
	// redelivers it after AckWait.
	defer it.Stop()
	readCtx, stopReading := context.WithCancel(ctx)
	msgs := make(chan jetstream.Msg, w.o.Concurrency)
	failed := make(chan error, 1)
	var readers sync.WaitGroup // the reader, and the trimmer
	readers.Go(func() { w.trim(readCtx, stream, cons) })
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(msgs)
		for {
			select {
			case sem <- struct{}{}:
			case <-readCtx.Done():
				return
			}
			msg, err := it.Next(jetstream.NextContext(readCtx))
			if err != nil {
				<-sem
				if readCtx.Err() != nil {
					return
				}
				if streamGone(err) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					failed <- fmt.Errorf("webhooks consumer: %w", err)
					return
				}
				w.o.Log.Warn("webhooks consumer", "err", err)
				continue
			}
			msgs <- msg
		}
	}()
	defer func() {
		stopReading()
		readers.Wait()
		// Messages read but not batched give their slots back; the server
		// redelivers them after AckWait.
		for range msgs {
			<-sem
		}
	}()
	size := w.batchSize()
	// At most two batches run at once: while they wait on PostgreSQL, the reader
	// pulls what the slots of Concurrency left allow for the next one.
	running := make(chan struct{}, batchesAtOnce)
	var held atomic.Int64 // the slots of the batches running
	for {
		select {
		case running <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		var batch []jetstream.Msg
		select {
		case msg, ok := <-msgs:
			if !ok {
				<-running
				select {
				case err := <-failed:
					return err
				default:
					return nil
				}
			}
			batch = append(batch, msg)
		case <-ctx.Done():
			<-running
			return nil
		}
		w.gather(&batch, msgs, func() int { return min(size, w.o.Concurrency-int(held.Load())) })
		held.Add(int64(len(batch)))
		inflight.Add(1)
		go func() {
			defer func() {
				held.Add(-int64(len(batch)))
				for range batch {
					<-sem
				}
				<-running
				inflight.Done()
			}()
			w.handleBatch(workCtx, batch)
		}()
	}
}

// gather adds messages to a batch of one until it holds room() (the batch size, or
// what the slots the running batches leave allow) or no more come: within
// batchLinger when its last message said the stream held no more, within
// batchGather of its start while the stream says more are there (another replica
// may take them).
func (w *Worker) gather(batch *[]jetstream.Msg, msgs <-chan jetstream.Msg, room func() int) {
	start := time.Now()
	linger := cmp.Or(w.o.linger, batchLinger)
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for len(*batch) < room() {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			*batch = append(*batch, msg)
		case <-timer.C:
			left := batchGather - time.Since(start)
			if left <= 0 || !streamHasMore((*batch)[len(*batch)-1]) {
				return
			}
			timer.Reset(min(linger, left))
		}
	}
}

// streamHasMore reports whether the stream held messages for the consumer beyond
// msg when msg was delivered.
func streamHasMore(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && md.NumPending > 0
}

// item is one message of a batch and what became of it.
type item struct {
	msg        jetstream.Msg
	seq        uint64 // in the stream
	ev         events.WebhookReceived
	deliveries int
	log        *slog.Logger
	// dupOf is the index of an earlier message of the batch with the same dedupe
	// key; -1 when none.
	dupOf int
	// What the webhook does, once mapped (apply), or its outcome when it is known
	// without the store (outcome), or why it failed (err).
	apply   *store.WebhookApply
	src     *webhookmap.Source
	alert   webhookmap.Alert
	targets []Target
	outcome string
	err     error
	applied store.Applied
}

// decided reports whether the item needs nothing more before its ack.
func (it *item) decided() bool { return it.outcome != "" || it.err != nil || it.dupOf >= 0 }

// handleBatch processes a batch of deliveries with a fixed number of PostgreSQL
// round trips (whether they were dealt with, one resolution per instance, one
// transaction), then acknowledges each as its outcome says: ack when done (or a
// duplicate, or a payload that can never be mapped), a delayed nak when a
// dependency failed, termination once the deliveries are used up. Nothing is acked
// before the commit: a worker killed in between has its batch redelivered, and the
// records make the redelivery a no-op.
func (w *Worker) handleBatch(ctx context.Context, msgs []jetstream.Msg) {
	start := time.Now()
	var st stages
	items := make([]*item, 0, len(msgs))
	first := map[string]int{}
	for _, msg := range msgs {
		it, ok := w.decode(ctx, msg)
		if !ok {
			continue
		}
		it.dupOf = -1
		if i, seen := first[it.ev.DedupeKey]; seen {
			it.dupOf = i
		} else {
			first[it.ev.DedupeKey] = len(items)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	stop := keepAliveAll(items, w.o.AckWait)
	w.process(ctx, items, &st)
	stop()

	if w.o.afterCommit != nil {
		for _, it := range items {
			if it.err == nil && it.dupOf < 0 {
				w.o.afterCommit(it.ev)
			}
		}
	}
	for _, it := range items {
		if it.dupOf >= 0 {
			f := items[it.dupOf]
			if it.seq == f.seq {
				continue // the same message delivered again meanwhile: the first's ack is its own
			}
			// The same webhook twice in one batch: done when the first is, else
			// processed again later.
			if f.err == nil && f.outcome != store.WebhookInvalid && f.outcome != store.WebhookFailed {
				it.outcome = "duplicate"
			} else {
				it.err = cmp.Or(f.err, errors.New("its first copy in the batch was "+f.outcome))
			}
		}
		w.finish(ctx, it, start, st, len(items))
	}
}

// decode reads a delivery; an undecodable one is recorded and terminated here
// (false).
func (w *Worker) decode(ctx context.Context, msg jetstream.Msg) (*item, bool) {
	md, err := msg.Metadata()
	if err != nil {
		w.o.Log.Error("webhook message without metadata", "err", err)
		_ = msg.Term()
		return nil, false
	}
	deliveries := int(md.NumDelivered)
	var ev events.WebhookReceived
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.DedupeKey == "" || ev.Source == "" {
		key := fmt.Sprintf("undecodable:%s:%d", md.Stream, md.Sequence.Stream)
		if _, rerr := w.o.DB.RecordWebhook(ctx, store.WebhookRecord{DedupeKey: key, WebhookID: events.WebhookID(key), Source: "unknown",
			ReceivedAt: md.Timestamp, Outcome: store.WebhookInvalid, Detail: "undecodable stream message", Deliveries: deliveries,
			Payload: msg.Data()}); rerr != nil {
			w.o.Log.Error("undecodable webhook message not recorded, will retry", "stream_seq", md.Sequence.Stream, "err", rerr)
			_ = msg.NakWithDelay(w.retryDelay(deliveries))
			return nil, false
		}
		w.o.Log.Error("undecodable webhook message terminated", "stream_seq", md.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("undecodable")
		return nil, false
	}
	return &item{msg: msg, seq: md.Sequence.Stream, ev: ev, deliveries: deliveries,
		log: w.o.Log.With("source", ev.Source, "webhook_id", ev.ID, "deliveries", deliveries)}, true
}

// finish acknowledges one delivery as its outcome says.
func (w *Worker) finish(ctx context.Context, it *item, start time.Time, st stages, batch int) {
	log, ev, deliveries := it.log, it.ev, it.deliveries
	switch {
	case it.err == nil:
		w.count(ev.Source, it.outcome)
		if err := it.msg.Ack(); err != nil {
			// The record in PostgreSQL makes the redelivery a no-op.
			log.Warn("webhook ack failed", "err", err)
		}
		// Where the webhook's time went: waiting in the stream since it was accepted,
		// then each stage of its batch here (dexbench sums these up).
		log.Info("webhook processed", "outcome", it.outcome, "duration_ms", time.Since(start).Milliseconds(),
			"queued_ms", start.Sub(ev.Time).Milliseconds(), "batch", batch, "resolve_ms", st.resolve.Milliseconds(),
			"diagnose_ms", st.diagnose.Milliseconds(), "store_ms", st.store.Milliseconds(), "publish_ms", st.publish.Milliseconds())
	case deliveries >= w.o.MaxDeliveries:
		err := it.err
		rec := record(ev, store.WebhookFailed, deliveries, err.Error())
		rec.Payload = ev.Payload
		if _, rerr := w.o.DB.RecordWebhook(ctx, rec); rerr != nil {
			// Not terminated unrecorded: the server's MaxDeliver backstop bounds this.
			log.Error("failed webhook could not be recorded, will retry", "err", err, "record_err", rerr)
			_ = it.msg.NakWithDelay(w.retryDelay(deliveries))
			return
		}
		w.count(ev.Source, "failed")
		log.Error("webhook failed every delivery, terminated", "err", err)
		_ = it.msg.TermWithReason("failed " + fmt.Sprint(deliveries) + " deliveries")
	default:
		delay := w.retryDelay(deliveries)
		w.count(ev.Source, "retry")
		log.Warn("webhook processing failed, will retry", "err", it.err, "retry_in_ms", delay.Milliseconds())
		_ = it.msg.NakWithDelay(delay)
	}
}

// retryDelay is the wait before redelivering after the n-th failed delivery: the
// retry base, doubling, at most a minute.
func (w *Worker) retryDelay(n int) time.Duration {
	return min(time.Duration(1<<min(max(n-1, 0), 6))*w.o.RetryBase, time.Minute)
}

func (w *Worker) count(source, outcome string) {
	if w.o.Metrics != nil {
		w.o.Metrics.Webhooks.WithLabelValues(source, "worker_"+outcome).Inc()
	}
}

// keepAliveAll tells JetStream the batch's messages are in progress every half
// AckWait until the returned stop is called.
func keepAliveAll(items []*item, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ackWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, it := range items {
					_ = it.msg.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func record(ev events.WebhookReceived, outcome string, deliveries int, detail string) store.WebhookRecord {
	return store.WebhookRecord{DedupeKey: ev.DedupeKey, WebhookID: ev.ID, Source: ev.Source, DeliveryID: ev.DeliveryID,
		ReceivedAt: ev.Time, Outcome: outcome, Detail: detail, Deliveries: deliveries}
}

// stages is the time a webhook spent in each stage of process.
type stages struct{ resolve, diagnose, store, publish time.Duration }

// since adds the time since t to d and returns now.
func since(d *time.Duration, t time.Time) time.Time {
	now := time.Now()
	*d += now.Sub(t)
	return now
}

// process maps a batch's webhooks and records their effects: it sets each item's
// outcome, or its error when a dependency failed and a later delivery may succeed.
func (w *Worker) process(ctx context.Context, items []*item, st *stages) {
	t := time.Now()
	keys := make([]string, 0, len(items))
	for _, it := range items {
		if it.dupOf < 0 {
			keys = append(keys, it.ev.DedupeKey)
		}
	}
	done, err := w.o.DB.WebhooksDone(ctx, keys)
	t = since(&st.store, t)
	if err != nil {
		for _, it := range items {
			it.err = err
		}
		return
	}
	rules := w.o.Rules.Current()
	for _, it := range items {
		switch {
		case it.dupOf >= 0:
		case done[it.ev.DedupeKey]:
			it.outcome = "duplicate"
		default:
			w.plan(rules, it)
		}
	}
	w.resolveAll(ctx, items)
	t = since(&st.resolve, t)
	w.diagnoseAll(ctx, items)
	t = since(&st.diagnose, t)

	var batch []store.WebhookApply
	var in []*item
	for _, it := range items {
		if !it.decided() && it.apply != nil {
			batch, in = append(batch, *it.apply), append(in, it)
		}
	}
	if len(batch) > 0 {
		applied, err := w.o.DB.ApplyWebhooks(ctx, batch, wire.ProactiveDelivery)
		if err != nil && len(in) > 1 {
			// One webhook may be what fails the batch: each is recorded on its own, so
			// the others are not held back by it.
			w.o.Log.Warn("webhook batch not recorded at once, recording each on its own", "batch", len(in), "err", err)
			for _, it := range in {
				it.applied, it.err = w.storeOne(ctx, it.apply)
			}
		} else {
			for i, it := range in {
				if err != nil {
					it.err = err
				} else {
					it.applied = applied[i]
				}
			}
		}
	}
	t = since(&st.store, t)
	for _, it := range in {
		switch {
		case it.err != nil:
		case it.applied.Duplicate:
			it.outcome = "duplicate"
		default:
			it.outcome = it.applied.Outcome
			if effective(it.apply.Effects) {
				w.announce(it.applied, it.log)
				a := it.applied
				it.log.Info("proactive events recorded", "monitor", it.apply.Record.Monitor, "alert_status", it.apply.Record.AlertStatus,
					"outcome", a.Outcome, "opened", len(a.Opened), "closed", len(a.Closed), "suppressed", len(a.Suppressed),
					"healthy", len(a.Healthy), "unresolved", len(a.Unresolved), "callbacks", a.Deliveries)
			}
		}
	}
	since(&st.publish, t)
}

// effective reports whether a webhook does anything beyond its record.
func effective(e store.ProactiveEffects) bool { return len(e.Open) > 0 || e.Close != nil }

// storeOne records one webhook in its own transaction.
func (w *Worker) storeOne(ctx context.Context, a *store.WebhookApply) (store.Applied, error) {
	if effective(a.Effects) {
		return w.o.DB.ApplyWebhook(ctx, a.Record, a.Effects, wire.ProactiveDelivery)
	}
	dup, err := w.o.DB.RecordWebhook(ctx, a.Record)
	return store.Applied{Duplicate: dup, Outcome: a.Record.Outcome, Detail: a.Record.Detail}, err
}

// plan maps a webhook: what to record for it, and for an open alert, the source and
// alert to resolve and diagnose before its events can be built.
func (w *Worker) plan(rules *webhookmap.Rules, it *item) {
	ev, log := it.ev, it.log
	recordOnly := func(rec store.WebhookRecord, payload []byte) {
		rec.Payload = payload
		it.apply = &store.WebhookApply{Record: rec}
	}
	src, ok := rules.Source(ev.Source)
	if !ok {
		recordOnly(record(ev, store.WebhookInvalid, it.deliveries, "no webhook source "+ev.Source+" in the rules"), ev.Payload)
		return
	}
	a, err := src.Map(ev.Payload)
	if err != nil {
		// The reason may quote the payload: it goes to the record and the debug log.
		var inv *webhookmap.Invalid
		field := ""
		if errors.As(err, &inv) {
			field = inv.Field
		}
		log.Warn("webhook payload not mapped", "field", field)
		log.Debug("webhook payload not mapped", "err", err)
		recordOnly(record(ev, store.WebhookInvalid, it.deliveries, err.Error()), ev.Payload)
		return
	}
	// The outcome is provisional: ApplyWebhooks records what the webhook did.
	rec := record(ev, store.WebhookOpened, it.deliveries, "")
	rec.Monitor, rec.AlertStatus = a.Monitor, string(a.Status)
	if a.Rule == nil {
		rec.Outcome, rec.Detail = store.WebhookIgnored, "no rule for this monitor"
		log.Info("webhook for an unmapped monitor ignored", "monitor", a.Monitor)
		recordOnly(rec, nil)
		return
	}
	eff := store.ProactiveEffects{Callback: w.o.Callback}
	if a.Status == webhookmap.Closed {
		rec.Outcome = store.WebhookClosed
		eff.Close = CloseEvents(a, ev.Time)
	} else {
		it.src, it.alert = src, a
	}
	it.apply = &store.WebhookApply{Record: rec, Effects: eff}
}

// resolveConcurrency bounds the lookups of the alerts resolved one at a time.
const resolveConcurrency = 8

// resolveAll finds the targets of the batch's open alerts: the devices named, with
// one lookup per instance when the Resolver can look up several at once; the
// rest one by one, a few at a time.
func (w *Worker) resolveAll(ctx context.Context, items []*item) {
	br, batched := w.o.Resolver.(BatchResolver)
	byInstance := map[string][]*item{}
	var single []*item
	for _, it := range items {
		switch {
		case it.decided() || it.src == nil:
		case batched && it.alert.Device != "":
			byInstance[it.src.Instance] = append(byInstance[it.src.Instance], it)
		default:
			single = append(single, it)
		}
	}
	for instance, its := range byInstance {
		names := make([]string, len(its))
		for i, it := range its {
			names[i] = it.alert.Device
		}
		found, err := br.UsersOfDevices(ctx, instance, names)
		for _, it := range its {
			if err != nil {
				it.err = fmt.Errorf("resolve device: %w", err)
				continue
			}
			var dev *Device
			var users []Employee
			if r, ok := found[it.alert.Device]; ok {
				dev, users = &r.Device, r.Users
			}
			it.targets = Targets(it.alert, it.src.MaxUsersPerDevice, dev, users, nil, nil)
		}
	}
	sem := make(chan struct{}, resolveConcurrency)
	var wg sync.WaitGroup
	for _, it := range single {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			it.targets, it.err = w.resolve(ctx, it.src, it.alert)
		}()
	}
	wg.Wait()
}

// diagnoseAll runs the diagnoses of the batch's open alerts at once (each alert's
// devices in turn) and builds their events.
func (w *Worker) diagnoseAll(ctx context.Context, items []*item) {
	var wg sync.WaitGroup
	for _, it := range items {
		if it.decided() || it.src == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			checked := w.diagnose(ctx, it.alert, it.targets, it.log)
			it.apply.Effects.Open = OpenEvents(it.src, it.alert, it.targets, checked, RunsOn(w.o.Actions), w.o.Topics)
		}()
	}
	wg.Wait()
}

// resolve looks up the payload's device and user in the cache, on the source's instance.
func (w *Worker) resolve(ctx context.Context, src *webhookmap.Source, a webhookmap.Alert) ([]Target, error) {
	var dev *Device
	var devUsers []Employee
	var emp *Employee
	var empDevices []Device
	var err error
	if a.Device != "" {
		if dev, devUsers, err = w.o.Resolver.UsersOfDevice(ctx, src.Instance, a.Device); err != nil {
			return nil, fmt.Errorf("resolve device: %w", err)
		}
	}
	// A device the cache does not know leaves the alert unresolved, whoever its user.
	if a.User != "" && a.Device == "" {
		if emp, empDevices, err = w.o.Resolver.DevicesOfUser(ctx, src.Instance, a.User); err != nil {
			return nil, fmt.Errorf("resolve user: %w", err)
		}
	}
	return Targets(a, src.MaxUsersPerDevice, dev, devUsers, emp, empDevices), nil
}

// diagnose runs the topic on each device someone can be told of, when a Diagnoser
// is wired. A failed diagnosis does not hold the event back: the event says the
// device could not be checked, and why.
func (w *Worker) diagnose(ctx context.Context, a webhookmap.Alert, targets []Target, log *slog.Logger) map[string]Checked {
	if w.o.Diagnoser == nil || a.Rule.Topic == "" {
		return nil
	}
	out := map[string]Checked{}
	for _, t := range targets {
		if t.Device == nil || t.Employee == nil || t.Unresolved != "" {
			continue
		}
		if _, done := out[t.Device.Name]; done {
			continue
		}
		if why := w.unsupported(a.Rule.Topic, *t.Device); why != "" {
			out[t.Device.Name] = Checked{Error: why}
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, w.o.DiagnosisTimeout)
		d, err := w.o.Diagnoser.Diagnose(dctx, a.Rule.Topic, *t.Device)
		cancel()
		if err != nil || d == nil {
			log.Warn("diagnosis before the proactive event failed", "topic", a.Rule.Topic, "device", t.Device.Name, "err", err)
			detail := "the diagnosis failed"
			if p := problem.From(err); p != nil && p.Code != problem.Internal {
				detail = p.Detail
			}
			out[t.Device.Name] = Checked{Error: detail}
			continue
		}
		out[t.Device.Name] = Checked{Diagnosis: d}
	}
	return out
}

// unsupported says why a topic cannot diagnose a device ("" when it can): the
// device's platform is not one of the topic's.
func (w *Worker) unsupported(topicID string, d Device) string {
	if w.o.Topics == nil || d.Platform == "" {
		return ""
	}
	t, ok := w.o.Topics.Get(topicID)
	if !ok || t.SupportsPlatform(d.Platform) {
		return ""
	}
	return fmt.Sprintf("the %s topic applies to %s devices; %s runs %s", topicID, strings.Join(t.Platforms, " and "), d.Name, d.Platform)
}

// announce publishes the changes on NATS after the commit: best effort, it only
// wakes the dispatcher and the event streams early.
func (w *Worker) announce(applied store.Applied, log *slog.Logger) {
	if w.o.Conn == nil {
		return
	}
	for _, group := range []struct {
		kind string
		evs  []store.ProactiveEvent
	}{{events.ProactiveOpened, applied.Opened}, {events.ProactiveClosed, applied.Closed}} {
		for _, e := range group.evs {
			if err := events.AnnounceProactiveChange(w.o.Conn, w.o.Subjects, wire.ProactiveChanged(e, group.kind, "")); err != nil {
				log.Debug("proactive change not announced", "event_id", e.ID, "err", err)
			}
		}
	}
}
