package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
	// Concurrency is how many webhooks one worker processes at once: each mostly
	// waits, on PostgreSQL and on its diagnosis (a topics worker, then the tenant), so
	// a backlog drains at Concurrency over that wait.
	Concurrency int
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

// ConfigFrom is the worker's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	return Config{Concurrency: c.Webhooks.Concurrency, AckWait: 30 * time.Second, MaxDeliveries: c.Webhooks.MaxDeliveries,
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
	w.o.Log.Info("webhooks worker started", "consumer", ConsumerName, "concurrency", w.o.Concurrency)
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

// consume pulls messages until ctx ends (nil) or the consumer fails (an error:
// the caller sets things up again).
func (w *Worker) consume(ctx, workCtx context.Context, sem chan struct{}, inflight *sync.WaitGroup) error {
	if _, err := broker.EnsureStream(ctx, w.o.JS, events.WebhooksStream(w.o.Subjects, w.o.DuplicateWindow)); err != nil {
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
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			if streamGone(err) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("webhooks consumer: %w", err)
			}
			w.o.Log.Warn("webhooks consumer", "err", err)
			continue
		}
		inflight.Add(1)
		go func() {
			defer func() { <-sem; inflight.Done() }()
			w.handle(workCtx, msg)
		}()
	}
}

// handle processes one delivery and acknowledges it as its outcome says: ack when
// done (or a duplicate, or a payload that can never be mapped), a delayed nak when a
// dependency failed, termination once the deliveries are used up.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		w.o.Log.Error("webhook message without metadata", "err", err)
		_ = msg.Term()
		return
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
			return
		}
		w.o.Log.Error("undecodable webhook message terminated", "stream_seq", md.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("undecodable")
		return
	}
	log := w.o.Log.With("source", ev.Source, "webhook_id", ev.ID, "deliveries", deliveries)

	// Keep the message alive while it is being worked on (a diagnosis may be slow).
	stopProgress := keepAlive(msg, w.o.AckWait)
	var st stages
	outcome, err := w.process(ctx, ev, deliveries, log, &st)
	stopProgress()
	switch {
	case err == nil:
		w.count(ev.Source, outcome)
		if w.o.afterCommit != nil {
			w.o.afterCommit(ev)
		}
		if err := msg.Ack(); err != nil {
			// The record in PostgreSQL makes the redelivery a no-op.
			log.Warn("webhook ack failed", "err", err)
		}
		// Where the webhook's time went: waiting in the stream since it was accepted,
		// then each stage here (dexbench sums these up).
		log.Info("webhook processed", "outcome", outcome, "duration_ms", time.Since(start).Milliseconds(),
			"queued_ms", start.Sub(ev.Time).Milliseconds(), "resolve_ms", st.resolve.Milliseconds(),
			"diagnose_ms", st.diagnose.Milliseconds(), "store_ms", st.store.Milliseconds(), "publish_ms", st.publish.Milliseconds())
	case deliveries >= w.o.MaxDeliveries:
		rec := record(ev, store.WebhookFailed, deliveries, err.Error())
		rec.Payload = ev.Payload
		if _, rerr := w.o.DB.RecordWebhook(ctx, rec); rerr != nil {
			// Not terminated unrecorded: the server's MaxDeliver backstop bounds this.
			log.Error("failed webhook could not be recorded, will retry", "err", err, "record_err", rerr)
			_ = msg.NakWithDelay(w.retryDelay(deliveries))
			return
		}
		w.count(ev.Source, "failed")
		log.Error("webhook failed every delivery, terminated", "err", err)
		_ = msg.TermWithReason("failed " + fmt.Sprint(deliveries) + " deliveries")
	default:
		delay := w.retryDelay(deliveries)
		w.count(ev.Source, "retry")
		log.Warn("webhook processing failed, will retry", "err", err, "retry_in_ms", delay.Milliseconds())
		_ = msg.NakWithDelay(delay)
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

// keepAlive tells JetStream the message is in progress every half AckWait until the
// returned stop is called.
func keepAlive(msg jetstream.Msg, ackWait time.Duration) (stop func()) {
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
				_ = msg.InProgress()
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

// process maps a webhook and records its effects; it returns the outcome, or an
// error when a dependency failed and a later delivery may succeed.
func (w *Worker) process(ctx context.Context, ev events.WebhookReceived, deliveries int, log *slog.Logger, st *stages) (string, error) {
	t := time.Now()
	done, err := w.o.DB.WebhookDone(ctx, ev.DedupeKey)
	t = since(&st.store, t)
	if err != nil {
		return "", err
	}
	if done {
		return "duplicate", nil
	}
	src, ok := w.o.Rules.Current().Source(ev.Source)
	if !ok {
		return w.recordOnly(ctx, record(ev, store.WebhookInvalid, deliveries, "no webhook source "+ev.Source+" in the rules"), ev.Payload)
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
		return w.recordOnly(ctx, record(ev, store.WebhookInvalid, deliveries, err.Error()), ev.Payload)
	}
	// The outcome is provisional: ApplyWebhook records what the webhook did.
	rec := record(ev, store.WebhookOpened, deliveries, "")
	rec.Monitor, rec.AlertStatus = a.Monitor, string(a.Status)
	if a.Rule == nil {
		rec.Outcome, rec.Detail = store.WebhookIgnored, "no rule for this monitor"
		log.Info("webhook for an unmapped monitor ignored", "monitor", a.Monitor)
		return w.recordOnly(ctx, rec, nil)
	}
	var eff store.ProactiveEffects
	eff.Callback = w.o.Callback
	if a.Status == webhookmap.Closed {
		rec.Outcome = store.WebhookClosed
		eff.Close = CloseEvents(a, ev.Time)
	} else {
		t = time.Now()
		targets, err := w.resolve(ctx, src, a)
		t = since(&st.resolve, t)
		if err != nil {
			return "", err
		}
		checked := w.diagnose(ctx, a, targets, log)
		since(&st.diagnose, t)
		eff.Open = OpenEvents(src, a, targets, checked, RunsOn(w.o.Actions), w.o.Topics)
	}
	t = time.Now()
	applied, err := w.o.DB.ApplyWebhook(ctx, rec, eff, wire.ProactiveDelivery)
	t = since(&st.store, t)
	if err != nil {
		return "", err
	}
	if applied.Duplicate {
		return "duplicate", nil
	}
	w.announce(applied, log)
	since(&st.publish, t)
	log.Info("proactive events recorded", "monitor", a.Monitor, "alert_status", a.Status, "outcome", applied.Outcome,
		"opened", len(applied.Opened), "closed", len(applied.Closed), "suppressed", len(applied.Suppressed),
		"healthy", len(applied.Healthy), "unresolved", len(applied.Unresolved), "callbacks", applied.Deliveries)
	return applied.Outcome, nil
}

func (w *Worker) recordOnly(ctx context.Context, rec store.WebhookRecord, payload []byte) (string, error) {
	rec.Payload = payload
	dup, err := w.o.DB.RecordWebhook(ctx, rec)
	if err != nil {
		return "", err
	}
	if dup {
		return "duplicate", nil
	}
	return rec.Outcome, nil
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
