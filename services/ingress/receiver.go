package ingress

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// WebhookLedger is the webhooks' records (store.DB): whether one was already dealt
// with, the record of a payload refused, and the listing for operators.
type WebhookLedger interface {
	WebhookDone(ctx context.Context, dedupeKey string) (bool, error)
	RecordWebhook(ctx context.Context, rec store.WebhookRecord) (duplicate bool, err error)
	ListWebhookDeliveries(ctx context.Context, q store.WebhookQuery) ([]store.WebhookDelivery, error)
	SigningKey(ctx context.Context, purpose string) ([]byte, error)
}

// WebhookReceiverOptions are the webhook receiver's dependencies.
type WebhookReceiverOptions struct {
	JS       jetstream.JetStream
	Subjects events.Subjects
	Rules    *webhookmap.Live
	// Ledger, when set, lets the receiver answer "duplicate" for a webhook processed
	// long ago without publishing it again (best effort: the worker's record decides),
	// record the payloads it refuses, and list the webhooks for operators.
	Ledger WebhookLedger
	// WebhookConfig is the tuning; the zero one is DefaultConfig's.
	WebhookConfig
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// WebhookReceiver authenticates webhooks for their source (Basic or Bearer, and an
// HMAC signature when the source signs), computes their dedupe key and stores them
// durably in the WEBHOOKS stream with Nats-Msg-Id, answering 202 only once JetStream
// has acknowledged them. The webhooks worker consumes the stream.
type WebhookReceiver struct {
	o        WebhookReceiverOptions
	mu       sync.Mutex
	ensured  bool
	ensuring time.Time
	keys     cursorKey
}

// NewWebhookReceiver returns a receiver.
func NewWebhookReceiver(o WebhookReceiverOptions) *WebhookReceiver {
	if o.WebhookConfig == (WebhookConfig{}) {
		o.WebhookConfig = DefaultConfig().Webhooks
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &WebhookReceiver{o: o}
}

// Outcomes counted in metrics.Webhooks by the receiver.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeUnauthorized = "unauthorized"
	outcomeUnavailable  = "unavailable"
	outcomeRefused      = "refused"
)

func (r *WebhookReceiver) count(source, outcome string) {
	if r.o.Metrics != nil {
		r.o.Metrics.Webhooks.WithLabelValues(source, outcome).Inc()
	}
}

// denied is an authentication failure; challenge is the WWW-Authenticate value.
type denied struct {
	problem   *problem.Error
	challenge string
}

func (d *denied) Error() string { return d.problem.Error() }
func (d *denied) Unwrap() error { return d.problem }

// Authenticate finds source and checks its Basic or Bearer credential in the request
// headers. An unknown or disabled source is not found.
func (r *WebhookReceiver) Authenticate(source string, h http.Header) (*webhookmap.Source, error) {
	src, ok := r.o.Rules.Current().Source(source)
	if !ok || src.Disabled != "" {
		return nil, problem.New(problem.NotFound, "no webhook source %q", source)
	}
	var err error
	switch src.Auth.Type {
	case "basic":
		user, pass, ok := (&http.Request{Header: h}).BasicAuth()
		// Both parts are always compared, so timing tells nothing about which was wrong.
		userOK, passOK := equal(user, src.Auth.Username), equal(pass, src.Auth.Password.Reveal())
		if !ok || !userOK || !passOK {
			err = &denied{problem.New(problem.Unauthorized, "send the credential configured for webhook source %q with HTTP Basic", source),
				`Basic realm="dexbridge webhooks", charset="UTF-8"`}
		}
	case "bearer":
		a := h.Get("Authorization")
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") || !equal(strings.TrimSpace(a[7:]), src.Auth.Token.Reveal()) {
			err = &denied{problem.New(problem.Unauthorized, "send the token configured for webhook source %q as Authorization: Bearer", source),
				`Bearer realm="dexbridge webhooks"`}
		}
	}
	if err != nil {
		r.count(source, outcomeUnauthorized)
		return nil, err
	}
	return src, nil
}

// equal compares in constant time, hashed to equal lengths first.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// incomingWebhook is a webhook whose credential has been checked and whose body is a
// JSON object of bounded size.
type incomingWebhook struct {
	Method      string
	Header      http.Header
	Body        []byte
	ContentType string
	RequestID   string
}

// maxDeliveryID bounds the sender's delivery id.
const maxDeliveryID = 200

// Accept verifies the signature (when the source signs), then stores the webhook in
// the stream and returns once JetStream has acknowledged it (or recognised a
// duplicate). When JetStream cannot confirm in time, the error is a 503 the sender
// should retry.
func (r *WebhookReceiver) Accept(ctx context.Context, src *webhookmap.Source, in incomingWebhook) (api.WebhookAccepted, error) {
	if s := src.Signature; s != nil {
		if err := signature.Verify([]byte(s.Secret.Reveal()), in.Header.Get(s.Header), in.Body, r.o.Now(), s.Tolerance); err != nil {
			r.count(src.Name, outcomeUnauthorized)
			return api.WebhookAccepted{}, &denied{problem.Wrap(problem.Unauthorized, err, s.Header+": "+err.Error()), ""}
		}
	}
	deliveryID := strings.TrimSpace(in.Header.Get(src.DeliveryIDHeader))
	if !validDeliveryID(deliveryID) {
		return api.WebhookAccepted{}, problem.InvalidField(src.DeliveryIDHeader, "a delivery id is 1 to %d printable ASCII characters", maxDeliveryID)
	}
	key := events.WebhookDedupeKey(src.Name, deliveryID, in.Body)
	acc := api.WebhookAccepted{ID: events.WebhookID(key), Source: src.Name, DedupeKey: key}
	if _, err := src.Map(in.Body); err != nil {
		return api.WebhookAccepted{}, r.refuse(ctx, src, key, deliveryID, in.Body, err)
	}
	if r.o.Ledger != nil {
		seenCtx, cancel := context.WithTimeout(ctx, time.Second)
		done, err := r.o.Ledger.WebhookDone(seenCtx, key)
		cancel()
		if err != nil {
			r.o.Log.Debug("webhook dedupe record unavailable, publishing", "source", src.Name, "err", err)
		} else if done {
			acc.Duplicate = true
			r.count(src.Name, outcomeDuplicate)
			return acc, nil
		}
	}
	msg := events.WebhookReceived{
		Header: events.Header{Type: events.TypeWebhookReceived, ID: acc.ID, Time: r.o.Now().UTC().Truncate(time.Millisecond)},
		Source: src.Name, DedupeKey: key, DeliveryID: deliveryID, Method: in.Method,
		ContentType: in.ContentType, RequestID: in.RequestID, Payload: in.Body,
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return api.WebhookAccepted{}, err
	}
	ack, err := r.publish(ctx, src.Name, data, events.WebhookMsgID(key))
	if err != nil {
		r.count(src.Name, outcomeUnavailable)
		r.o.Log.Warn("webhook not stored", "source", src.Name, "webhook_id", acc.ID, "err", err)
		return api.WebhookAccepted{}, problem.Wrap(problem.ServiceUnavailable, err, "the webhook could not be stored durably right now; send it again").Retry(5 * time.Second)
	}
	acc.Duplicate = ack.Duplicate
	if acc.Duplicate {
		r.count(src.Name, outcomeDuplicate)
	} else {
		r.count(src.Name, outcomeAccepted)
	}
	r.o.Log.Info("webhook accepted", "source", src.Name, "webhook_id", acc.ID, "duplicate", acc.Duplicate,
		"stream_seq", ack.Sequence, "bytes", len(in.Body))
	return acc, nil
}

// refuse answers a payload its source's rules cannot map: 422 naming what is
// missing, before anything is stored; the refusal is recorded (best effort) so that
// operators see it among the webhooks received.
func (r *WebhookReceiver) refuse(ctx context.Context, src *webhookmap.Source, key, deliveryID string, body []byte, err error) error {
	r.count(src.Name, outcomeRefused)
	inv := &webhookmap.Invalid{Reason: err.Error()}
	errors.As(err, &inv)
	if r.o.Ledger != nil {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, rerr := r.o.Ledger.RecordWebhook(rctx, store.WebhookRecord{DedupeKey: key, WebhookID: events.WebhookID(key),
			Source: src.Name, DeliveryID: deliveryID, ReceivedAt: r.o.Now().UTC(), Outcome: store.WebhookInvalid,
			Detail: "refused with 422: " + err.Error(), Payload: body})
		cancel()
		if rerr != nil {
			r.o.Log.Warn("refused webhook not recorded", "source", src.Name, "err", rerr)
		}
	}
	// The reason may quote the payload: debug level only.
	r.o.Log.Info("webhook refused: its payload does not map", "source", src.Name, "field", inv.Field)
	r.o.Log.Debug("webhook refused: its payload does not map", "source", src.Name, "err", err)
	return &problem.Error{Code: problem.Unprocessable, Field: inv.Path,
		Detail: "the payload does not map to an alert with the rules of webhook source " + src.Name + ": " + err.Error()}
}

// publish stores data in the stream, creating the stream the first time (and again
// after it was found missing, at most every few seconds).
func (r *WebhookReceiver) publish(ctx context.Context, source string, data []byte, msgID string) (*jetstream.PubAck, error) {
	if nc := r.o.JS.Conn(); nc != nil && nc.Status() != nats.CONNECTED {
		// Refused at once: buffered until NATS is back, the sender would wait the
		// whole publish timeout for an acknowledgement that cannot come sooner.
		return nil, fmt.Errorf("nats %s", nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.PublishTimeout)
	defer cancel()
	if err := r.ensure(ctx); err != nil {
		return nil, err
	}
	m := nats.NewMsg(r.o.Subjects.Of(events.WebhooksReceived, source))
	m.Data = data
	ack, err := r.o.JS.PublishMsg(ctx, m, jetstream.WithMsgID(msgID),
		jetstream.WithExpectStream(r.o.Subjects.Stream(events.StreamWebhooks)))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		r.mu.Lock()
		r.ensured = false
		r.mu.Unlock()
	}
	return ack, err
}

func (r *WebhookReceiver) ensure(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ensured {
		return nil
	}
	if now := r.o.Now(); now.Before(r.ensuring) {
		return errors.New("webhooks stream missing")
	} else {
		r.ensuring = now.Add(2 * time.Second)
	}
	if _, err := broker.EnsureStream(ctx, r.o.JS, events.WebhooksStream(r.o.Subjects, r.o.DuplicateWindow)); err != nil {
		return fmt.Errorf("webhooks stream: %w", err)
	}
	r.ensured = true
	return nil
}

func validDeliveryID(id string) bool {
	if len(id) > maxDeliveryID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
