package webhooks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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
	"github.com/dexbridge/dexbridge/internal/metrics"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// SeenChecker tells whether a webhook was already dealt with (store.DB).
type SeenChecker interface {
	WebhookDone(ctx context.Context, dedupeKey string) (bool, error)
}

// ReceiverOptions are the receiver's dependencies.
type ReceiverOptions struct {
	JS       jetstream.JetStream
	Subjects events.Subjects
	Rules    *webhookmap.Live
	// Seen, when set, lets the receiver answer "duplicate" for a webhook processed
	// long ago, without publishing it again. Best effort: the worker's record decides.
	Seen SeenChecker
	// PublishTimeout bounds the wait for JetStream's acknowledgement (default 5 s);
	// past it the sender gets 503 and retries.
	PublishTimeout time.Duration
	Stream         StreamOptions
	Metrics        *metrics.Metrics
	Log            *slog.Logger
	Now            func() time.Time
}

// Receiver authenticates webhooks and stores them durably in the WEBHOOKS stream.
type Receiver struct {
	o        ReceiverOptions
	mu       sync.Mutex
	ensured  bool
	ensuring time.Time
}

// NewReceiver returns a receiver.
func NewReceiver(o ReceiverOptions) *Receiver {
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Receiver{o: o}
}

// Outcomes counted in metrics.Webhooks by the receiver.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeUnauthorized = "unauthorized"
	outcomeUnavailable  = "unavailable"
)

func (r *Receiver) count(source, outcome string) {
	if r.o.Metrics != nil {
		r.o.Metrics.Webhooks.WithLabelValues(source, outcome).Inc()
	}
}

// Denied is an authentication failure; Challenge is the WWW-Authenticate value.
type Denied struct {
	Problem   *problem.Error
	Challenge string
}

func (d *Denied) Error() string { return d.Problem.Error() }
func (d *Denied) Unwrap() error { return d.Problem }

// Authenticate finds source and checks its Basic or Bearer credential in the request
// headers. An unknown or disabled source is not found.
func (r *Receiver) Authenticate(source string, h http.Header) (*webhookmap.Source, error) {
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
			err = &Denied{problem.New(problem.Unauthorized, "send the credential configured for webhook source %q with HTTP Basic", source),
				`Basic realm="dexbridge webhooks", charset="UTF-8"`}
		}
	case "bearer":
		a := h.Get("Authorization")
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") || !equal(strings.TrimSpace(a[7:]), src.Auth.Token.Reveal()) {
			err = &Denied{problem.New(problem.Unauthorized, "send the token configured for webhook source %q as Authorization: Bearer", source),
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

// Incoming is a webhook whose credential has been checked and whose body is a JSON
// object of bounded size.
type Incoming struct {
	Method      string
	Header      http.Header
	Body        []byte
	ContentType string
	RequestID   string
}

// Accepted is the receiver's answer.
type Accepted struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	Duplicate bool   `json:"duplicate"`
	// DedupeKey is how dexbridge recognises this webhook when it comes again.
	DedupeKey string `json:"dedupe_key"`
}

// maxDeliveryID bounds the sender's delivery id.
const maxDeliveryID = 200

// Accept verifies the signature (when the source signs), then stores the webhook in
// the stream and returns once JetStream has acknowledged it (or recognised a
// duplicate). When JetStream cannot confirm in time, the error is a 503 the sender
// should retry.
func (r *Receiver) Accept(ctx context.Context, src *webhookmap.Source, in Incoming) (Accepted, error) {
	if s := src.Signature; s != nil {
		if err := signature.Verify([]byte(s.Secret.Reveal()), in.Header.Get(s.Header), in.Body, r.o.Now(), s.Tolerance); err != nil {
			r.count(src.Name, outcomeUnauthorized)
			return Accepted{}, &Denied{problem.Wrap(problem.Unauthorized, err, s.Header+": "+err.Error()), ""}
		}
	}
	deliveryID := strings.TrimSpace(in.Header.Get(src.DeliveryIDHeader))
	if !validDeliveryID(deliveryID) {
		return Accepted{}, problem.InvalidField(src.DeliveryIDHeader, "a delivery id is 1 to %d printable ASCII characters", maxDeliveryID)
	}
	key := DedupeKey(src.Name, deliveryID, in.Body)
	acc := Accepted{ID: WebhookID(key), Source: src.Name, DedupeKey: key}
	if r.o.Seen != nil {
		seenCtx, cancel := context.WithTimeout(ctx, time.Second)
		done, err := r.o.Seen.WebhookDone(seenCtx, key)
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
		return Accepted{}, err
	}
	ack, err := r.publish(ctx, src.Name, data, MsgID(key))
	if err != nil {
		r.count(src.Name, outcomeUnavailable)
		r.o.Log.Warn("webhook not stored", "source", src.Name, "webhook_id", acc.ID, "err", err)
		return Accepted{}, problem.Wrap(problem.ServiceUnavailable, err, "the webhook could not be stored durably right now; send it again").Retry(5 * time.Second)
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

// publish stores data in the stream, creating the stream the first time (and again
// after it was found missing, at most every few seconds).
func (r *Receiver) publish(ctx context.Context, source string, data []byte, msgID string) (*jetstream.PubAck, error) {
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

func (r *Receiver) ensure(ctx context.Context) error {
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
	if _, err := EnsureStream(ctx, r.o.JS, r.o.Subjects, r.o.Stream); err != nil {
		return err
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

// DedupeKey identifies a webhook across deliveries: the sender's delivery id when it
// gave one, else a hash of the source and the body.
func DedupeKey(source, deliveryID string, body []byte) string {
	if deliveryID != "" {
		return source + ":id:" + deliveryID
	}
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	return source + ":sha256:" + hex.EncodeToString(h.Sum(nil))
}

// MsgID is the Nats-Msg-Id of a dedupe key: fixed length, safe characters.
func MsgID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// WebhookID is the id a webhook is known by, derived from its dedupe key.
func WebhookID(key string) string {
	return "wh_" + MsgID(key)[:32]
}
