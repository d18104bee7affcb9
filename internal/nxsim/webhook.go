package nxsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// FireAlert is the body of POST /_nxsim/alerts.
type FireAlert struct {
	Monitor  string   `json:"monitor"`  // "Outlook crashes", "OneDrive not running", "Slow PC", "Low disk space", ...
	Status   string   `json:"status"`   // "open" (default) or "closed"
	Device   string   `json:"device"`   // device name, optional
	User     string   `json:"user"`     // user name; default the device's most recent user
	Context  string   `json:"context"`  // alert.context
	Priority string   `json:"priority"` // alert.monitor.priority, default "medium"
	Tags     string   `json:"tags"`     // alert.monitor.tags
	Webhook  *Webhook `json:"webhook"`  // optional: the webhook to send
}

// Webhook is a Nexthink-style outbound webhook.
type Webhook struct {
	URL    string `json:"url"`    // the connector credential's base URL
	Method string `json:"method"` // POST (default), PUT or PATCH
	Path   string `json:"path"`   // resource path appended to URL
	// Payload is a template: {{field}} placeholders (alert.monitor.name, alert.status,
	// alert.context, alert.trigger_time, alert.recovery_time, alert.monitor.priority,
	// alert.monitor.tags, device.name, device.collector.uid, device.uid,
	// device.operating_system.platform, user.name, user.upn, user.sid,
	// user.ad.email_address; the alert fields also without "alert.") are replaced by the
	// value, escaped for a JSON string. Empty: a JSON object of every field.
	Payload   string            `json:"payload"`
	Auth      *WebhookAuth      `json:"auth"`
	Headers   map[string]string `json:"headers"`
	TimeoutMS int               `json:"timeout_ms"` // default 10 s
}

// WebhookAuth is the receiver's authentication: Basic or Bearer.
type WebhookAuth struct {
	Type     string `json:"type"` // "basic" or "bearer"
	Username string `json:"username"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// WebhookResult reports the delivery.
type WebhookResult struct {
	URL    string `json:"url"`
	Method string `json:"method"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"` // first 4 KiB of the receiver's answer
	Error  string `json:"error,omitempty"`
}

// placeholderRE matches {{ field }}.
var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.]+)\s*\}\}`)

func (t *tenant) handleFireAlert(w http.ResponseWriter, r *http.Request) {
	var req FireAlert
	if !decodeControl(w, r, &req) {
		return
	}
	fields, alert, err := t.alertFields(r.Context(), req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{Error: err.Error()})
		return
	}
	var payload string
	if req.Webhook != nil {
		if payload, err = validateWebhook(req.Webhook, fields); err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{Error: err.Error()})
			return
		}
	}
	t.fleet.AddAlert(alert)
	t.log.Info("alert fired", "monitor", alert.Monitor, "status", alert.Status, "device", fields["device.name"])
	out := map[string]any{"alert": fields}
	if req.Webhook != nil {
		out["webhook"] = sendWebhook(r.Context(), req.Webhook, payload)
	}
	writeJSON(w, http.StatusOK, out)
}

// alertFields builds the alert and the values of its placeholders.
func (t *tenant) alertFields(ctx context.Context, req FireAlert) (map[string]string, fleet.Alert, error) {
	a := fleet.Alert{Monitor: req.Monitor, Status: req.Status, Context: req.Context,
		Priority: req.Priority, Tags: req.Tags, Device: -1, User: -1}
	if a.Monitor == "" {
		return nil, a, fmt.Errorf("monitor is required")
	}
	if a.Status == "" {
		a.Status = fleet.AlertOpen
	}
	if a.Status != fleet.AlertOpen && a.Status != fleet.AlertClosed {
		return nil, a, fmt.Errorf("status %q: want open or closed", a.Status)
	}
	if a.Priority == "" {
		a.Priority = "medium"
	}
	now := t.clock().Truncate(time.Second)
	a.TriggerTime = now
	if a.Status == fleet.AlertClosed {
		a.TriggerTime, a.RecoveryTime = now.Add(-10*time.Minute), now
	}
	fields := map[string]string{}
	if req.Device != "" {
		i, ok := t.fleet.DeviceByName(req.Device)
		if !ok {
			return nil, a, fmt.Errorf("no device %q", req.Device)
		}
		a.Device, a.User = i, t.fleet.PrimaryUser(i)
		rows, _ := t.fleet.Lookup(ctx, "devices", "device.name", []string{req.Device})
		for _, f := range []string{"device.name", "device.collector.uid", "device.uid", "device.operating_system.platform"} {
			fields[f] = fmt.Sprint(rows[0].Value(f))
		}
	}
	if req.User != "" {
		u, ok := t.fleet.UserByName(req.User)
		if !ok {
			return nil, a, fmt.Errorf("no user %q", req.User)
		}
		a.User = u
	}
	if a.User >= 0 {
		rows, _ := t.fleet.Lookup(ctx, "users", "user.name", []string{t.fleet.UserName(a.User)})
		for _, f := range []string{"user.name", "user.upn", "user.sid", "user.ad.email_address"} {
			fields[f] = fmt.Sprint(rows[0].Value(f))
		}
	}
	recovery := ""
	if !a.RecoveryTime.IsZero() {
		recovery = a.RecoveryTime.UTC().Format(nqlTimeLayout)
	}
	for k, v := range map[string]string{
		"monitor.name": a.Monitor, "status": a.Status, "context": a.Context,
		"trigger_time": a.TriggerTime.UTC().Format(nqlTimeLayout), "recovery_time": recovery,
		"monitor.priority": a.Priority, "monitor.tags": a.Tags,
	} {
		fields["alert."+k] = v
	}
	return fields, a, nil
}

// validateWebhook checks the webhook settings and renders its payload.
func validateWebhook(wh *Webhook, fields map[string]string) (string, error) {
	u, err := url.Parse(wh.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("webhook.url %q: want an http or https URL", wh.URL)
	}
	if wh.Method == "" {
		wh.Method = http.MethodPost
	}
	switch wh.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return "", fmt.Errorf("webhook.method %q: want POST, PUT or PATCH", wh.Method)
	}
	if wh.Auth != nil {
		switch strings.ToLower(wh.Auth.Type) {
		case "basic", "bearer":
		default:
			return "", fmt.Errorf("webhook.auth.type %q: want basic or bearer", wh.Auth.Type)
		}
	}
	if wh.Payload == "" {
		b, err := json.Marshal(fields)
		return string(b), err
	}
	return renderPayload(wh.Payload, fields)
}

// renderPayload replaces {{field}} placeholders; an unknown field is an error.
func renderPayload(tmpl string, fields map[string]string) (string, error) {
	var missing []string
	out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		v, ok := fields[name]
		if !ok {
			v, ok = fields["alert."+name]
		}
		if !ok {
			missing = append(missing, name)
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("webhook.payload: unknown placeholders %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// sendWebhook delivers the payload and reports the receiver's answer.
func sendWebhook(ctx context.Context, wh *Webhook, payload string) WebhookResult {
	target := strings.TrimSuffix(wh.URL, "/")
	if wh.Path != "" {
		target += "/" + strings.TrimPrefix(wh.Path, "/")
	}
	res := WebhookResult{URL: target, Method: wh.Method}
	timeout := 10 * time.Second
	if wh.TimeoutMS > 0 {
		timeout = time.Duration(wh.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, wh.Method, target, strings.NewReader(payload))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nxsim-webhook/1")
	for k, v := range wh.Headers {
		req.Header.Set(k, v)
	}
	if wh.Auth != nil {
		if strings.EqualFold(wh.Auth.Type, "basic") {
			req.SetBasicAuth(wh.Auth.Username, wh.Auth.Password)
		} else {
			req.Header.Set("Authorization", "Bearer "+wh.Auth.Token)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	res.Status, res.Body = resp.StatusCode, string(b)
	return res
}
