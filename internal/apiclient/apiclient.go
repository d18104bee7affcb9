// Package apiclient is a typed client of dexbridge's REST API, for the command line,
// the example chatbot, end-to-end tests and benchmarks. Error answers come back as
// *problem.Error with the server's code, detail and Retry-After.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// Client calls one dexbridge deployment with one API key.
type Client struct {
	base string
	key  string
	http *http.Client
}

// New returns a client of the API at base ("http://127.0.0.1:8090").
func New(base, key string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{Timeout: 5 * time.Minute}}
}

// WithHTTPClient uses c for every call.
func (c *Client) WithHTTPClient(h *http.Client) *Client {
	cc := *c
	cc.http = h
	return &cc
}

// do sends a request and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any, header http.Header) (int, http.Header, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if resp.StatusCode >= 400 {
		var doc problem.Document
		if json.Unmarshal(raw, &doc) != nil || doc.Code == "" {
			return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: HTTP %d: %.200s", method, path, resp.StatusCode, raw)
		}
		p := problem.FromDoc(doc)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && p.RetryAfter == 0 {
			p.RetryAfter = time.Duration(s) * time.Second
		}
		return resp.StatusCode, resp.Header, p
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// Topics lists the topics.
func (c *Client) Topics(ctx context.Context) ([]events.Topic, error) {
	var out struct {
		Topics []events.Topic `json:"topics"`
	}
	_, _, err := c.do(ctx, http.MethodGet, "/api/v1/topics", nil, nil, &out, nil)
	return out.Topics, err
}

// Devices is the answer of an identification.
type Devices = api.Devices

// Identify finds an employee's devices, or a device, by one key (events.KeyUsername,
// events.KeyDeviceName, ...), on every instance.
func (c *Client) Identify(ctx context.Context, key, value string) (*Devices, error) {
	return c.IdentifyOn(ctx, key, value, "")
}

// IdentifyOn is Identify on one instance ("" for every instance).
func (c *Client) IdentifyOn(ctx context.Context, key, value, instance string) (*Devices, error) {
	q := url.Values{key: {value}}
	if instance != "" {
		q.Set("instance", instance)
	}
	var out Devices
	_, _, err := c.do(ctx, http.MethodGet, "/api/v1/devices", q, nil, &out, nil)
	return &out, err
}

// Diagnose runs a topic's diagnosis on a device.
func (c *Client) Diagnose(ctx context.Context, topic, device string, refresh bool) (*events.Diagnosis, error) {
	var out events.Diagnosis
	body := map[string]any{"device": device, "refresh": refresh}
	_, _, err := c.do(ctx, http.MethodPost, "/api/v1/topics/"+url.PathEscape(topic)+"/diagnosis", nil, body, &out, nil)
	return &out, err
}

// Trigger asks for a remote action run.
type Trigger struct {
	RemoteAction      string            `json:"remote_action"`
	Device            string            `json:"device"`
	Params            map[string]string `json:"params,omitempty"`
	WaitSeconds       int               `json:"wait_seconds"`
	Reason            string            `json:"reason,omitempty"`
	ExternalReference string            `json:"external_reference,omitempty"`
}

// RunAction triggers a remote action; with WaitSeconds it waits for the final state
// that long. idempotencyKey, when set, makes a retry return the same execution.
func (c *Client) RunAction(ctx context.Context, t Trigger, idempotencyKey string) (*events.Execution, error) {
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var out events.Execution
	_, _, err := c.do(ctx, http.MethodPost, "/api/v1/remote-actions/executions", nil, t, &out, h)
	return &out, err
}

// Remediate runs a topic's remediation on a device, with the params of the latest
// diagnosis.
func (c *Client) Remediate(ctx context.Context, topic, remediation, device string, waitSeconds int, reason string) (*events.Execution, error) {
	var out events.Execution
	body := map[string]any{"device": device, "wait_seconds": waitSeconds, "reason": reason}
	path := "/api/v1/topics/" + url.PathEscape(topic) + "/remediations/" + url.PathEscape(remediation)
	_, _, err := c.do(ctx, http.MethodPost, path, nil, body, &out, nil)
	return &out, err
}

// Execution returns an execution; wait > 0 long-polls until it changes or wait ends.
func (c *Client) Execution(ctx context.Context, id string, wait time.Duration) (*events.Execution, error) {
	var q url.Values
	if wait > 0 {
		q = url.Values{"wait": {strconv.Itoa(int(wait.Seconds()))}}
	}
	var out events.Execution
	_, _, err := c.do(ctx, http.MethodGet, "/api/v1/remote-actions/executions/"+url.PathEscape(id), q, nil, &out, nil)
	return &out, err
}

// Status is the deployment's status as GET /api/v1/status answers it.
type Status map[string]any

// Status returns the instances' health and the cache sizes.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	_, _, err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, &out, nil)
	return out, err
}
