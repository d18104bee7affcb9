// Package callbacktest is a chatbot's endpoint for dexbridge's proactive
// deliveries, for tests: it verifies every Standard Webhooks signature with the
// specification's own Go library (github.com/standard-webhooks/standard-webhooks),
// an implementation independent of dexbridge's, and keeps what it received. Record
// makes the events whose deliveries it then gets.
package callbacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/dexbridge/dexbridge/events"
)

// Delivery is one delivery received with a valid signature.
type Delivery struct {
	// ID is the webhook-id, the same on every attempt of a delivery.
	ID       string
	Language string // Content-Language
	Header   http.Header
	Raw      []byte
	Body     events.ProactiveEventChanged
}

// Receiver answers deliveries: with its status (204 by default) when the
// signature verifies, 401 when it does not.
type Receiver struct {
	wh     *standardwebhooks.Webhook
	mu     sync.Mutex
	status int
	got    []Delivery
	bad    []string
	tries  int
}

// New is a receiver of a subscription's secret: whsec_<base64> as the API gives it,
// or the configured callback's secret as it is configured.
func New(t testing.TB, secret string) *Receiver {
	t.Helper()
	var wh *standardwebhooks.Webhook
	var err error
	if strings.HasPrefix(secret, "whsec_") {
		wh, err = standardwebhooks.NewWebhook(secret)
	} else {
		wh, err = standardwebhooks.NewWebhookRaw([]byte(secret))
	}
	if err != nil {
		t.Fatalf("callbacktest: %v", err)
	}
	return &Receiver{wh: wh, status: http.StatusNoContent}
}

// ServeHTTP verifies a delivery over its raw body and records it.
func (c *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tries++
	if err := c.wh.Verify(raw, r.Header); err != nil {
		c.bad = append(c.bad, r.Header.Get("webhook-id")+": "+err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if c.status >= 300 {
		w.WriteHeader(c.status)
		return
	}
	d := Delivery{ID: r.Header.Get("webhook-id"), Language: r.Header.Get("Content-Language"), Header: r.Header.Clone(), Raw: raw}
	if err := json.Unmarshal(raw, &d.Body); err != nil {
		c.bad = append(c.bad, d.ID+": "+err.Error())
	}
	c.got = append(c.got, d)
	w.WriteHeader(c.status)
}

// SetStatus sets the answer to the next deliveries; 300 and above refuse them.
func (c *Receiver) SetStatus(status int) {
	c.mu.Lock()
	c.status = status
	c.mu.Unlock()
}

// Received is what was accepted, in order of arrival.
func (c *Receiver) Received() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.got...)
}

// Tries counts every request, accepted or not.
func (c *Receiver) Tries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries
}

// Bad lists the requests whose signature or body was wrong.
func (c *Receiver) Bad() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

// Find is the delivery of a change kind (opened, closed) of the event on a device,
// nil when none came.
func (c *Receiver) Find(kind, device string) *Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.got {
		if g := c.got[i]; g.Body.Kind == kind && g.Body.Event.Device != nil && g.Body.Event.Device.Name == device {
			return &g
		}
	}
	return nil
}
