package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/nxsim"
)

// withHeaders adds headers to every request: how an MCP client sends its API key.
type withHeaders []string

func (h withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for i := 0; i+1 < len(h); i += 2 {
		r.Header.Set(h[i], h[i+1])
	}
	return http.DefaultTransport.RoundTrip(r)
}

// mcpSession connects the SDK's own client to /mcp with headers (name, value, ...).
func mcpSession(t *testing.T, base string, headers ...string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "dexbridge-test", Version: "1"}, nil)
	tr := &mcp.StreamableClientTransport{Endpoint: base + "/mcp", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: withHeaders(headers), Timeout: time.Minute}}
	cs, err := client.Connect(context.Background(), tr, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// mcpCall calls a tool; the result's problem code is "" on success.
func mcpCall(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v, want a tool result", name, err)
	}
	if !res.IsError {
		return res, ""
	}
	text := res.Content[0].(*mcp.TextContent).Text
	code, _, _ := strings.Cut(text, ":")
	var doc struct {
		Code string `json:"code"`
	}
	raw, _ := json.Marshal(res.Meta["dexbridge/problem"])
	if json.Unmarshal(raw, &doc) != nil || doc.Code != code {
		t.Errorf("%s: error text %q and _meta problem %s disagree", name, text, raw)
	}
	return res, code
}

// structured decodes a result's structured content after checking it against the
// tool's output schema, as a client that validates would.
func structured(t *testing.T, tools map[string]*mcp.Tool, name string, res *mcp.CallToolResult, into any) {
	t.Helper()
	raw, err := json.Marshal(tools[name].OutputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: output schema: %v", name, err)
	}
	resolved, err := s.Resolve(nil)
	if err != nil {
		t.Fatalf("%s: output schema: %v", name, err)
	}
	body, _ := json.Marshal(res.StructuredContent)
	var instance any
	_ = json.Unmarshal(body, &instance)
	if err := resolved.Validate(instance); err != nil {
		t.Errorf("%s: structured content does not match the output schema: %v\n%s", name, err, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(res.Content) == 0 || res.Content[0].(*mcp.TextContent).Text == "" {
		t.Errorf("%s: no text for the model", name)
	}
}

// restStatus sends a REST request with key (and header name, value pairs) and returns
// the status and problem code.
func restStatus(t *testing.T, base, key, method, path string, body any, headers ...string) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p.Code
}

// delegateKey creates, through the REST API with the admin key, a delegate key bound
// to upn, or, for "", one that names its employee with each request.
func delegateKey(t *testing.T, base, admin, upn string) string {
	t.Helper()
	body := map[string]any{"name": "agent for " + upn, "scopes": []string{"delegate", "read", "diagnose", "remediate"}}
	if upn != "" {
		body["employee_upn"] = upn
	}
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/api-keys", bytes.NewReader(raw))
	req.Header.Set("X-API-Key", admin)
	req.Header.Set("Content-Type", "application/json")
	var got api.NewAPIKey
	var status int
	// The key endpoints take one request per 10 s per client: wait for the turn.
	waitUntil(t, func() bool {
		resp, err := http.DefaultClient.Do(req.Clone(context.Background()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		if status == http.StatusTooManyRequests {
			req.Body, _ = req.GetBody()
			return false
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		return true
	})
	if status != http.StatusCreated || (upn != "") != (got.EmployeeUPN != nil) || (upn != "" && *got.EmployeeUPN != upn) || got.Key == "" {
		t.Fatalf("create delegate key: got %d %+v", status, got.APIKey)
	}
	return got.Key
}

// TestMCPAgentActsForItsEmployeeOnly drives /mcp with the SDK's client against the
// whole product and nxsim's two tenants: an agent holding a delegate key identifies,
// diagnoses and fixes its employee's devices, and everybody else's devices, picked
// at random from the fleet, are refused on MCP and REST alike.
func TestMCPAgentActsForItsEmployeeOnly(t *testing.T) {
	sim, cfg, base := startFleet(t)
	admin := apiKey(t, cfg)
	waitDiscovered(t, base, admin, 2)

	// Without a key, or with a wrong one, the door is closed before MCP starts.
	if _, err := mcpSession(t, base); err == nil {
		t.Error("no key: connected, want a refusal")
	}
	if _, err := mcpSession(t, base, "Authorization", "Bearer dxb_wrong"); err == nil {
		t.Error("wrong key: connected, want a refusal")
	}

	// John Doe's agent (the scenario user with PC-OUTLOOK-OFFLINE, whose fix is ready).
	jdoe := "jdoe@example.com"
	jdoeKey := delegateKey(t, base, admin, jdoe)
	agent, err := mcpSession(t, base, "Authorization", "Bearer "+jdoeKey)
	if err != nil {
		t.Fatal(err)
	}
	list, err := agent.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*mcp.Tool{}
	for _, tl := range list.Tools {
		tools[tl.Name] = tl
	}
	for _, name := range []string{"identify_devices", "list_topics", "diagnose", "remediate", "get_execution", "list_proactive_events"} {
		if tools[name] == nil || tools[name].OutputSchema == nil || tools[name].Description == "" {
			t.Fatalf("tool %s: got %+v, want it listed with a description and an output schema", name, tools[name])
		}
	}
	if a := tools["remediate"].Annotations; a == nil || a.DestructiveHint == nil || !*a.DestructiveHint || !a.IdempotentHint {
		t.Errorf("remediate annotations: got %+v, want destructive and idempotent", a)
	}

	res, code := mcpCall(t, agent, "identify_devices", map[string]any{"upn": jdoe})
	var mine api.Devices
	if code != "" {
		t.Fatalf("identify jdoe: %s %v", code, res.Content)
	}
	structured(t, tools, "identify_devices", res, &mine)
	if !slices.ContainsFunc(mine.Devices, func(d events.Device) bool { return d.Name == "PC-OUTLOOK-OFFLINE" }) {
		t.Fatalf("identify jdoe: got %+v, want PC-OUTLOOK-OFFLINE", mine.Devices)
	}
	res, code = mcpCall(t, agent, "identify_devices", nil)
	var same api.Devices
	if code != "" {
		t.Fatalf("identify with no argument: %s %v", code, res.Content)
	}
	structured(t, tools, "identify_devices", res, &same)
	if len(same.Devices) != len(mine.Devices) || len(same.Devices) == 0 || same.Devices[0].CollectorUID != mine.Devices[0].CollectorUID {
		t.Errorf("identify with no argument: got %+v, want jdoe's devices %+v", same.Devices, mine.Devices)
	}
	res, code = mcpCall(t, agent, "list_topics", nil)
	var topics api.Topics
	if code != "" {
		t.Fatalf("list_topics: %s", code)
	}
	structured(t, tools, "list_topics", res, &topics)

	res, code = mcpCall(t, agent, "diagnose", map[string]any{"topic": "outlook", "device": "PC-OUTLOOK-OFFLINE"})
	var diag api.Diagnosis
	if code != "" {
		t.Fatalf("diagnose: %s %v", code, res.Content)
	}
	structured(t, tools, "diagnose", res, &diag)
	if !hasFinding(&diag, "outlook_offline") {
		t.Fatalf("diagnose: findings %v, want outlook_offline", findings(&diag))
	}

	// The fix: a reason is required; a retry with the same idempotency key replays.
	if _, code := mcpCall(t, agent, "remediate", map[string]any{"topic": "outlook", "remediation": "set_outlook_online", "device": "PC-OUTLOOK-OFFLINE"}); code != "invalid_request" {
		t.Errorf("remediate without a reason: got %q, want invalid_request", code)
	}
	fix := map[string]any{"topic": "outlook", "remediation": "set_outlook_online", "device": "PC-OUTLOOK-OFFLINE",
		"reason": "jdoe: Outlook keeps crashing", "idempotency_key": fmt.Sprintf("mcp-test-%d", time.Now().UnixNano())}
	res, code = mcpCall(t, agent, "remediate", fix)
	var ex api.Execution
	if code != "" {
		t.Fatalf("remediate: %s %v", code, res.Content)
	}
	structured(t, tools, "remediate", res, &ex)
	res, _ = mcpCall(t, agent, "remediate", fix)
	var again api.Execution
	structured(t, tools, "remediate", res, &again)
	if again.ID != ex.ID || !again.Replayed {
		t.Errorf("retried remediate: got %s replayed=%v, want %s replayed", again.ID, again.Replayed, ex.ID)
	}
	waitUntil(t, func() bool {
		res, code := mcpCall(t, agent, "get_execution", map[string]any{"id": ex.ID, "wait_seconds": 5})
		if code != "" {
			t.Fatalf("get_execution: %s %v", code, res.Content)
		}
		structured(t, tools, "get_execution", res, &ex)
		return events.FinalStatus(ex.Status)
	})
	if ex.Status != events.StatusSuccess {
		t.Errorf("execution: got %s, want success", ex.Status)
	}
	res, _ = mcpCall(t, agent, "list_proactive_events", map[string]any{"limit": 50})
	var feed api.ProactiveEvents
	structured(t, tools, "list_proactive_events", res, &feed)

	// Everybody else's devices, drawn from both tenants, both platforms, online or
	// not: refused by name and by collector UID, on MCP and on REST.
	ctx := context.Background()
	var others []nxsim.SampledDevice
	for _, tenant := range []string{"eu", "us"} {
		ctl := nxsim.NewControlClient(sim.TenantURL(tenant), nil)
		for _, platform := range []string{"Windows", "macOS"} {
			for _, presence := range []string{"online", "offline"} {
				devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 1, Seed: 18, Platform: platform, Presence: presence})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range devs {
					if !strings.EqualFold(d.UserUPN, jdoe) {
						others = append(others, d)
					}
				}
			}
		}
	}
	if len(others) < 6 {
		t.Fatalf("sampled %d devices of other employees, want at least 6", len(others))
	}
	for _, d := range others {
		for _, device := range []string{d.Name, d.CollectorUID} {
			if _, code := mcpCall(t, agent, "diagnose", map[string]any{"topic": "outlook", "device": device}); code != "delegate_forbidden" {
				t.Errorf("MCP diagnose %s (%s %s): got %q, want delegate_forbidden", device, d.Platform, d.Presence, code)
			}
			if _, code := mcpCall(t, agent, "remediate", map[string]any{"topic": "outlook", "remediation": "set_outlook_online",
				"device": device, "reason": "not theirs"}); code != "delegate_forbidden" {
				t.Errorf("MCP remediate %s: got %q, want delegate_forbidden", device, code)
			}
			if status, code := restStatus(t, base, jdoeKey, http.MethodPost, "/api/v1/topics/outlook/diagnosis", map[string]any{"device": device}); status != 403 || code != "delegate_forbidden" {
				t.Errorf("REST diagnose %s: got %d %q, want 403 delegate_forbidden", device, status, code)
			}
			if status, code := restStatus(t, base, jdoeKey, http.MethodPost, "/api/v1/remote-actions/executions",
				map[string]any{"remote_action": "#get_outlook_online_windows", "device": device}); status != 403 || code != "delegate_forbidden" {
				t.Errorf("REST trigger %s: got %d %q, want 403 delegate_forbidden", device, status, code)
			}
			if status, code := restStatus(t, base, jdoeKey, http.MethodGet, "/api/v1/devices/"+device, nil); status != 403 || code != "delegate_forbidden" {
				t.Errorf("REST device %s: got %d %q, want 403 delegate_forbidden", device, status, code)
			}
		}
		if d.UserUPN != "" {
			if _, code := mcpCall(t, agent, "identify_devices", map[string]any{"upn": d.UserUPN}); code != "delegate_forbidden" {
				t.Errorf("MCP identify %s: got %q, want delegate_forbidden", d.UserUPN, code)
			}
		}
		if _, code := mcpCall(t, agent, "identify_devices", map[string]any{"device_name": d.Name}); code != "delegate_forbidden" {
			t.Errorf("MCP identify device %s: got %q, want delegate_forbidden", d.Name, code)
		}
	}
	for _, path := range []string{"/api/v1/remote-actions/executions", "/api/v1/proactive/stream"} {
		if status, code := restStatus(t, base, jdoeKey, http.MethodGet, path, nil); status != 403 || code != "delegate_forbidden" {
			t.Errorf("REST %s: got %d %q, want 403 delegate_forbidden", path, status, code)
		}
	}
	if status, code := restStatus(t, base, jdoeKey, http.MethodPost, "/api/v1/nql/%23diagnose_outlook_issues", map[string]any{}); status != 403 || code != "delegate_forbidden" {
		t.Errorf("REST NQL: got %d %q, want 403 delegate_forbidden", status, code)
	}

	// Another employee's agent cannot read John's execution.
	other := others[0]
	if other.UserUPN == "" {
		t.Fatalf("sampled device %s has no user UPN", other.Name)
	}
	theirs, err := mcpSession(t, base, "X-API-Key", delegateKey(t, base, admin, other.UserUPN))
	if err != nil {
		t.Fatal(err)
	}
	if _, code := mcpCall(t, theirs, "get_execution", map[string]any{"id": ex.ID}); code != "delegate_forbidden" {
		t.Errorf("another agent reading John's execution: got %q, want delegate_forbidden", code)
	}

	// A delegate key of a chatbot serving many employees names, per request, the one
	// it acts for; naming nobody, or from a key without the scope, is refused.
	bot := delegateKey(t, base, admin, "")
	if _, err := mcpSession(t, base, "X-API-Key", bot); err == nil {
		t.Error("a per-request delegate naming nobody: connected, want a refusal")
	}
	if status, code := restStatus(t, base, bot, http.MethodGet, "/api/v1/topics", nil); status != 403 || code != "delegate_forbidden" {
		t.Errorf("REST per-request delegate naming nobody: got %d %q, want 403 delegate_forbidden", status, code)
	}
	if status, code := restStatus(t, base, admin, http.MethodGet, "/api/v1/topics", nil, "Dexbridge-On-Behalf-Of", jdoe); status != 403 || code != "delegate_forbidden" {
		t.Errorf("REST on behalf of someone from a key without the delegate scope: got %d %q, want 403 delegate_forbidden", status, code)
	}
	if status, code := restStatus(t, base, jdoeKey, http.MethodGet, "/api/v1/topics", nil, "Dexbridge-On-Behalf-Of", other.UserUPN); status != 403 || code != "delegate_forbidden" {
		t.Errorf("REST bound delegate acting for another: got %d %q, want 403 delegate_forbidden", status, code)
	}
	forOther, err := mcpSession(t, base, "X-API-Key", bot, "Dexbridge-On-Behalf-Of", other.UserUPN)
	if err != nil {
		t.Fatal(err)
	}
	if _, code := mcpCall(t, forOther, "identify_devices", map[string]any{"upn": other.UserUPN}); code != "" {
		t.Errorf("per-request delegate identifying its employee: got %q", code)
	}
	for _, device := range []string{other.Name, other.CollectorUID} {
		if res, code := mcpCall(t, forOther, "diagnose", map[string]any{"topic": "slow_pc", "device": device}); code != "" && code != "unprocessable" {
			t.Errorf("per-request delegate diagnosing its employee's %s: got %q %v", device, code, res.Content)
		}
	}
	stranger := others[slices.IndexFunc(others, func(d nxsim.SampledDevice) bool { return !strings.EqualFold(d.UserUPN, other.UserUPN) })]
	for _, device := range []string{"PC-OUTLOOK-OFFLINE", stranger.CollectorUID} {
		if _, code := mcpCall(t, forOther, "diagnose", map[string]any{"topic": "outlook", "device": device}); code != "delegate_forbidden" {
			t.Errorf("per-request delegate diagnosing %s: got %q, want delegate_forbidden", device, code)
		}
	}
	if _, code := mcpCall(t, forOther, "get_execution", map[string]any{"id": ex.ID}); code != "delegate_forbidden" {
		t.Errorf("per-request delegate reading John's execution: got %q, want delegate_forbidden", code)
	}
	if _, code := mcpCall(t, theirs, "identify_devices", map[string]any{"upn": other.UserUPN}); code != "" {
		t.Errorf("identify their own employee: got %q", code)
	}

	// An unrestricted key reaches any device; hostile arguments are clean tool errors.
	full, err := mcpSession(t, base, "X-API-Key", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, code := mcpCall(t, full, "identify_devices", map[string]any{"device_name": other.Name}); code != "" {
		t.Errorf("full key identifying %s: got %q", other.Name, code)
	}
	hostile := []struct {
		tool string
		args any
		code string
	}{
		{"diagnose", map[string]any{"topic": 7, "device": "PC-1"}, "invalid_request"},
		{"diagnose", map[string]any{"topic": "outlook", "device": strings.Repeat("A", 70000)}, "payload_too_large"},
		{"diagnose", map[string]any{"topic": "outlook", "device": strings.Repeat("A", 5000)}, "invalid_request"},
		{"diagnose", map[string]any{"topic": "../admin/reload", "device": "PC-1"}, "invalid_request"},
		{"diagnose", map[string]any{"topic": "outlook", "device": "PC-1", "sql": "drop"}, "invalid_request"},
		{"identify_devices", map[string]any{}, "invalid_request"},
		{"get_execution", map[string]any{"id": ex.ID, "wait_seconds": 600}, "invalid_request"},
		{"get_execution", map[string]any{"id": "ex_nope"}, "not_found"},
		{"list_proactive_events", map[string]any{"limit": "many"}, "invalid_request"},
	}
	for _, h := range hostile {
		if _, code := mcpCall(t, full, h.tool, h.args); code != h.code {
			t.Errorf("%s %v: got %q, want %s", h.tool, h.args, code, h.code)
		}
	}
	if _, err := full.CallTool(ctx, &mcp.CallToolParams{Name: "no_such_tool"}); err == nil {
		t.Error("unknown tool: got a result, want a protocol error")
	}

	// The MCP Inspector's CLI, the reference client, lists and calls the tools.
	inspect(t, base, jdoeKey)
}

// inspect runs the MCP Inspector's CLI mode (from the npm registry) against /mcp: it
// lists the tools and calls one, with the key in a header. (The inspector-cli package
// alone does not start outside the inspector's own tree; the inspector's 1.x line
// runs on Node.js 20, 2.x wants 22.) It needs Node.js: without npx
// the test skips, unless REQUIRE_SERVICES asks for everything.
func inspect(t *testing.T, base, key string) {
	t.Helper()
	npx, err := exec.LookPath("npx")
	if err != nil {
		if os.Getenv("REQUIRE_SERVICES") != "" {
			t.Fatal("npx not found, and REQUIRE_SERVICES is set")
		}
		t.Log("skipping the MCP Inspector: npx not found")
		return
	}
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		all := append([]string{"-y", "@modelcontextprotocol/inspector@1.0.3", "--cli", base + "/mcp", "--transport", "http",
			"--header", "Authorization: Bearer " + key}, args...)
		cmd := exec.CommandContext(ctx, npx, all...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("inspector %v: %v\n%s\n%s", args, err, out.String(), errOut.String())
		}
		return out.String()
	}
	var listed struct {
		Tools []struct {
			Name         string         `json:"name"`
			InputSchema  map[string]any `json:"inputSchema"`
			OutputSchema map[string]any `json:"outputSchema"`
		} `json:"tools"`
	}
	out := run("--method", "tools/list")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Tools) != 6 {
		t.Fatalf("inspector tools/list: got %d tools, %v\n%s", len(listed.Tools), err, out)
	}
	var called struct {
		IsError           bool        `json:"isError"`
		StructuredContent api.Devices `json:"structuredContent"`
	}
	out = run("--method", "tools/call", "--tool-name", "identify_devices", "--tool-arg", "upn=jdoe@example.com")
	if err := json.Unmarshal([]byte(out), &called); err != nil || called.IsError || len(called.StructuredContent.Devices) == 0 {
		t.Fatalf("inspector tools/call identify_devices: %v\n%s", err, out)
	}
	out = run("--method", "tools/call", "--tool-name", "identify_devices", "--tool-arg", "upn=someone.else@example.com")
	if err := json.Unmarshal([]byte(out), &called); err != nil || !called.IsError || !strings.Contains(out, "delegate_forbidden") {
		t.Fatalf("inspector tools/call for another employee: %v\n%s", err, out)
	}
}
