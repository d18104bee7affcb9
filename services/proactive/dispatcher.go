// Package proactive delivers proactive conversation events to the chatbots'
// subscriptions: an HTTP request signed per Standard Webhooks with the
// subscription's secret, retried with backoff, from an outbox in PostgreSQL that the
// webhooks worker fills in the same transaction as the events (one delivery per
// matching subscription), so every replica can deliver it and none is lost across
// restarts. A subscription whose delivery runs out of attempts is paused. The
// callback configured in the environment is one subscription. The ingress serves
// the same events as a feed and as server-sent events.
package proactive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/netguard"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/stdwebhooks"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Headers of a callback request, besides Standard Webhooks' webhook-id,
// webhook-timestamp and webhook-signature (package stdwebhooks) and
// Content-Language, the subscription's locale.
const (
	// HeaderSignature is dexbridge's earlier signature, t=<unix>,v1=<hex HMAC-SHA256
	// of "t.body">, sent to the configured callback only, for the receivers written
	// before subscriptions.
	HeaderSignature  = signature.Header
	HeaderDeliveryID = "X-Dexbridge-Delivery-Id"
	HeaderEventID    = "X-Dexbridge-Event-Id"
	HeaderAttempt    = "X-Dexbridge-Attempt"
)

// Config is the dispatcher's tuning. A Config is whole: start from DefaultConfig.
type Config struct {
	// MaxAttempts before a delivery is dead, and its subscription paused.
	MaxAttempts int
	// BackoffInitial is the wait after the first failure; it doubles up to
	// BackoffMax, with ±20% jitter; a Retry-After answer is honoured up to BackoffMax.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Concurrency is how many callbacks run at once; their outcomes are recorded in
	// batches, one transaction for all that finished meanwhile.
	Concurrency int
	// PollInterval is how often due deliveries are looked for when nothing wakes the
	// dispatcher.
	PollInterval    time.Duration
	ShutdownTimeout time.Duration
}

// ConfigFrom is the dispatcher's part of a process's configuration.
func ConfigFrom(c config.Config) Config {
	p := c.Proactive
	return Config{MaxAttempts: p.MaxAttempts, BackoffInitial: p.BackoffInitial.D(), BackoffMax: p.BackoffMax.D(),
		Timeout: p.Timeout.D(), Concurrency: 64, PollInterval: time.Second, ShutdownTimeout: c.ShutdownTimeout.D()}
}

// DefaultConfig is the tuning of a process that configures nothing.
func DefaultConfig() Config { return ConfigFrom(config.Default()) }

// DispatcherOptions configure the callback delivery.
type DispatcherOptions struct {
	DB       *store.DB
	Conn     *nats.Conn // optional: wakes the dispatcher when an event is recorded
	Subjects events.Subjects
	// URL is the callback configured in the environment, kept as the subscription
	// store.ConfigSubscriptionID; empty removes that subscription.
	URL string
	// Secret signs the configured callback's deliveries.
	Secret []byte
	// Policy limits what the subscriptions made through the API may reach; it is
	// checked on the address of every connection.
	Policy netguard.Policy
	// Config is the tuning; the zero Config is DefaultConfig.
	Config
	// Client calls the configured callback, the operator's own (default: a client
	// that follows no redirect); the API's subscriptions use a client of Policy.
	Client  *http.Client
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Dispatcher delivers the callback outbox. Replicas share the work: each claims due
// deliveries with FOR UPDATE SKIP LOCKED and a lease, so a delivery is attempted by
// one replica at a time and taken over if that replica dies.
type Dispatcher struct {
	o       DispatcherOptions
	guarded *http.Client
}

// NewDispatcher returns a dispatcher; Run starts it.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Config == (Config{}) {
		o.Config = DefaultConfig()
	}
	// A callback is answered where it was sent, never followed elsewhere.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Connections are kept for every callback in flight: a receiver answering
	// many at once is not reconnected to for each.
	if o.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(o.Concurrency, t.MaxIdleConnsPerHost)
		o.Client = &http.Client{Transport: t, CheckRedirect: noRedirect}
	}
	guarded := o.Policy.Transport()
	guarded.MaxIdleConnsPerHost = max(o.Concurrency, guarded.MaxIdleConnsPerHost)
	return &Dispatcher{o: o, guarded: &http.Client{Transport: guarded, CheckRedirect: noRedirect}}
}

// Run delivers until ctx ends, then lets the attempts in flight finish within the
// shutdown timeout; an attempt cut short is retried later (its lease expires).
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.o.DB.EnsureConfigSubscription(ctx, d.o.URL); err != nil {
		return fmt.Errorf("proactive dispatcher: %w", err)
	}
	wake := make(chan struct{}, 1)
	if d.o.Conn != nil {
		sub, err := d.o.Conn.Subscribe(d.o.Subjects.Of(events.ProactiveChanged), func(*nats.Msg) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return fmt.Errorf("proactive dispatcher: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var inflight sync.WaitGroup
	sem := make(chan struct{}, d.o.Concurrency)
	// A slot is given back once its attempt is recorded: a free slot means
	// another delivery can be claimed.
	release := func() {
		<-sem
		inflight.Done()
		select { // a slot is free: look for more
		case wake <- struct{}{}:
		default:
		}
	}
	results := make(chan attempted, d.o.Concurrency)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.record(context.WithoutCancel(ctx), results, release)
	}()
	lease := d.o.Timeout + 30*time.Second
	d.o.Log.Info("proactive dispatcher started", "concurrency", d.o.Concurrency, "max_attempts", d.o.MaxAttempts)
	for ctx.Err() == nil {
		free := d.o.Concurrency - len(sem)
		var claimed []store.ClaimedDelivery
		var err error
		if free > 0 {
			claimed, err = d.o.DB.ClaimProactiveDeliveries(ctx, free, lease)
			if err != nil && ctx.Err() == nil {
				d.o.Log.Warn("proactive deliveries not claimed", "err", err)
			}
		}
		for _, c := range claimed {
			sem <- struct{}{}
			inflight.Add(1)
			go func() { results <- d.attempt(workCtx, c) }()
		}
		if len(claimed) > 0 && len(claimed) == free {
			continue // there may be more due
		}
		wait := d.o.PollInterval
		// Only an idle dispatcher looks for the next due delivery: while any
		// attempt is in flight, its release wakes the loop to claim again, and a
		// retry falling due meanwhile waits at most PollInterval.
		if len(sem) == 0 && err == nil {
			if next, err := d.o.DB.NextProactiveDeliveryDue(ctx); err == nil && next != nil {
				wait = min(wait, max(time.Until(*next), 5*time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.o.ShutdownTimeout):
		d.o.Log.Warn("proactive dispatcher stopping with callbacks in flight; they will be retried")
		stopWork()
		<-done
	}
	close(results)
	<-recorded
	d.o.Log.Info("proactive dispatcher stopped")
	return nil
}

// attempted is a claimed delivery's attempt and what follows from it.
type attempted struct {
	c       store.ClaimedDelivery
	f       store.FinishedDelivery
	outcome string // delivered, dead, retry
}

// attempt sends one delivery and decides its next state.
func (d *Dispatcher) attempt(ctx context.Context, c store.ClaimedDelivery) attempted {
	started := time.Now()
	status, retryAfter, err := d.send(ctx, c)
	a := store.DeliveryAttempt{StartedAt: started, Duration: time.Since(started), Status: status}
	state, retryIn, outcome := store.DeliveryDelivered, time.Duration(0), "delivered"
	if err != nil {
		a.Error = err.Error()
		switch {
		// 410 Gone: the receiver says the endpoint is no more (Standard Webhooks).
		case c.Attempts-c.AttemptFloor >= d.o.MaxAttempts || status == http.StatusGone:
			state, outcome = store.DeliveryDead, "dead"
		default:
			state, outcome = store.DeliveryPending, "retry"
			retryIn = max(d.backoff(c.Attempts-c.AttemptFloor), min(retryAfter, d.o.BackoffMax))
		}
	}
	return attempted{c: c, f: store.FinishedDelivery{Delivery: c.ProactiveDelivery, Attempt: a, State: state, RetryIn: retryIn}, outcome: outcome}
}

// recordBatch is the most attempts recorded in one transaction.
const recordBatch = 64

// record records the attempts as they finish, all those finished meanwhile in one
// transaction, and gives each one's slot back, until results is closed.
func (d *Dispatcher) record(ctx context.Context, results <-chan attempted, release func()) {
	for first := range results {
		batch := []attempted{first}
	more:
		for len(batch) < recordBatch {
			select {
			case r, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		fs := make([]store.FinishedDelivery, len(batch))
		for i, r := range batch {
			fs[i] = r.f
		}
		oks, err := d.o.DB.FinishProactiveDeliveries(ctx, fs)
		if err != nil && len(batch) > 1 {
			// One attempt may be what fails the batch: each is recorded on its own.
			d.o.Log.Warn("callback attempts not recorded at once, recording each on its own", "batch", len(batch), "err", err)
			oks = make([]bool, len(batch))
			errs := make([]error, len(batch))
			for i, f := range fs {
				oks[i], errs[i] = d.o.DB.FinishProactiveDelivery(ctx, f.Delivery, f.Attempt, f.State, f.RetryIn)
			}
			for i, r := range batch {
				d.recorded(r, oks[i], errs[i])
			}
		} else {
			for i, r := range batch {
				ok := false
				if err == nil {
					ok = oks[i]
				}
				d.recorded(r, ok, err)
			}
		}
		for range batch {
			release()
		}
	}
}

// recorded logs and counts an attempt once recorded (or not, ferr).
func (d *Dispatcher) recorded(r attempted, ok bool, ferr error) {
	c, a := r.c, r.f.Attempt
	log := d.o.Log.With("delivery_id", wire.DeliveryID(c.ID), "event_id", c.EventID, "subscription_id", c.SubscriptionID,
		"attempt", c.Attempts-c.AttemptFloor)
	switch {
	case ferr != nil:
		// The lease runs out and the delivery is attempted again.
		log.Error("callback attempt not recorded", "err", ferr)
		return
	case !ok:
		log.Info("callback claim lost (lease expired or acknowledged meanwhile)")
		return
	}
	if d.o.Metrics != nil {
		d.o.Metrics.ProactiveDeliveries.WithLabelValues("callback", r.outcome).Inc()
	}
	switch r.outcome {
	case "delivered":
		log.Info("callback delivered", "status", a.Status, "duration_ms", a.Duration.Milliseconds())
	case "dead":
		log.Error("callback failed its last attempt: subscription paused until resumed", "status", a.Status, "err", a.Error)
	default:
		log.Warn("callback failed, will retry", "status", a.Status, "err", a.Error, "retry_in_ms", r.f.RetryIn.Milliseconds())
	}
}

// send posts the body, signed; a non-2xx answer is an error. The configured
// callback is signed with its configured secret, and also the earlier way.
func (d *Dispatcher) send(ctx context.Context, c store.ClaimedDelivery) (int, time.Duration, error) {
	client, key := d.guarded, []byte(nil)
	if c.Origin == store.SubscriptionFromConfig {
		client, key = d.o.Client, d.o.Secret
	} else {
		var err error
		if key, err = stdwebhooks.Key(c.Secret); err != nil {
			return 0, 0, errors.New("the subscription's secret is unreadable")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	body := []byte(c.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(c.Body))
	if err != nil {
		return 0, 0, errors.New("invalid callback URL")
	}
	now := time.Now()
	id := wire.DeliveryID(c.ID)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Language", c.Locale)
	req.Header.Set("User-Agent", "dexbridge-callback/1")
	stdwebhooks.Sign(req.Header, key, id, now, body)
	if c.Origin == store.SubscriptionFromConfig {
		req.Header.Set(HeaderSignature, signature.Sign(key, now, body))
	}
	req.Header.Set(HeaderDeliveryID, id)
	req.Header.Set(HeaderEventID, c.EventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(c.Attempts-c.AttemptFloor))
	resp, err := client.Do(req)
	if err != nil {
		// Keep the cause, not the URL: it may carry a token in its query.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter, fmt.Errorf("HTTP %d", resp.StatusCode)
}

// backoff is the wait after the n-th failed attempt: exponential from
// BackoffInitial, doubling up to BackoffMax, each wait randomised by ±20%.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier, b.RandomizationFactor = d.o.BackoffInitial, d.o.BackoffMax, 2, 0.2
	b.MaxElapsedTime = 0 // the attempt limit ends the retries, not the time
	b.Reset()
	wait := b.NextBackOff()
	for range min(max(n-1, 0), 62) {
		wait = b.NextBackOff()
	}
	return wait
}
