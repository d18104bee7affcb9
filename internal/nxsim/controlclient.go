package nxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// ControlClient drives one tenant's control API (/_nxsim/...) over HTTP, in-process or
// against a separate nxsim: tests, benchmarks and scripts use it instead of building
// requests by hand.
type ControlClient struct {
	base string // the tenant's base URL, such as Instance.TenantURL("eu")
	hc   *http.Client
}

// NewControlClient returns a client of the tenant at base; hc nil is http.DefaultClient.
func NewControlClient(base string, hc *http.Client) *ControlClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &ControlClient{base: base, hc: hc}
}

// Info describes the tenant.
func (c *ControlClient) Info(ctx context.Context) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodGet, "/_nxsim/info", nil, &out)
}

// Counters returns the calls the tenant received.
func (c *ControlClient) Counters(ctx context.Context) (Counters, error) {
	var out Counters
	return out, c.do(ctx, http.MethodGet, "/_nxsim/counters", nil, &out)
}

// ResetCounters sets every counter to zero.
func (c *ControlClient) ResetCounters(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_nxsim/counters/reset", nil, nil)
}

// SetFaults replaces the tenant's faults (the zero value clears them).
func (c *ControlClient) SetFaults(ctx context.Context, f Faults) error {
	return c.do(ctx, http.MethodPut, "/_nxsim/faults", f, nil)
}

// SetExecutionSettings replaces how remote-action executions progress.
func (c *ControlClient) SetExecutionSettings(ctx context.Context, s ExecutionSettings) error {
	return c.do(ctx, http.MethodPut, "/_nxsim/executions/settings", s, nil)
}

// SetExportSettings replaces how exports behave.
func (c *ControlClient) SetExportSettings(ctx context.Context, s ExportSettings) error {
	return c.do(ctx, http.MethodPut, "/_nxsim/exports/settings", s, nil)
}

// ExecutionView is one device's execution of a request, as the control API shows it.
type ExecutionView = executionView

// Executions returns the executions of a Nexthink request id.
func (c *ControlClient) Executions(ctx context.Context, requestID string) ([]ExecutionView, error) {
	var out []ExecutionView
	return out, c.do(ctx, http.MethodGet, "/_nxsim/executions/"+url.PathEscape(requestID), nil, &out)
}

// SetOnline brings the named devices online or takes them offline.
func (c *ControlClient) SetOnline(ctx context.Context, online bool, devices ...string) error {
	return c.do(ctx, http.MethodPost, "/_nxsim/devices/online", devicesOnline{Devices: devices, Online: online}, nil)
}

// AddQuery saves a query in the tenant.
func (c *ControlClient) AddQuery(ctx context.Context, id, nql string) error {
	return c.do(ctx, http.MethodPost, "/_nxsim/queries", addQuery{ID: id, NQL: nql}, nil)
}

// ExpireTokens invalidates every token the tenant issued.
func (c *ControlClient) ExpireTokens(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_nxsim/tokens/expire", nil, nil)
}

// FireAlert fires an alert and, when a is given a Webhook, sends it.
func (c *ControlClient) FireAlert(ctx context.Context, a FireAlert) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/_nxsim/alerts", a, &out)
}

// Sample asks for devices in the way of GET /_nxsim/devices.
type Sample struct {
	N                int    // how many (default 10)
	Seed             uint64 // the generator's seed (default 1)
	Platform         string // Windows or macOS; empty: any
	Presence         string // online, offline or long_unseen; empty: any
	IncludeScenarios bool
}

// SampleDevices returns up to s.N fleet devices drawn at random (reproducibly for a
// seed) among those matching s.
func (c *ControlClient) SampleDevices(ctx context.Context, s Sample) ([]SampledDevice, error) {
	q := url.Values{}
	if s.N > 0 {
		q.Set("n", strconv.Itoa(s.N))
	}
	if s.Seed > 0 {
		q.Set("seed", strconv.FormatUint(s.Seed, 10))
	}
	if s.Platform != "" {
		q.Set("platform", s.Platform)
	}
	if s.Presence != "" {
		q.Set("presence", s.Presence)
	}
	if s.IncludeScenarios {
		q.Set("scenarios", "include")
	}
	var out []SampledDevice
	return out, c.do(ctx, http.MethodGet, "/_nxsim/devices?"+q.Encode(), nil, &out)
}

func (c *ControlClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("nxsim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("nxsim %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("nxsim %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("nxsim %s %s: decode: %w", method, path, err)
	}
	return nil
}
