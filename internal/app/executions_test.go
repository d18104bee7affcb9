package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/cli"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// startFleet runs the product (all but the webhooks worker) against nxsim's tenants eu
// and us, whose remote actions finish within a second, and returns nxsim, the
// configuration and the ingress base URL.
func startFleet(t *testing.T) (*nxsim.Instance, config.Config, string) {
	t.Helper()
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "remoteactions", "poller")
	return sim, cfg, base
}

// TestNoDuplicateFixOnFleetDevices runs the whole product against nxsim's two tenants
// and, on ordinary fleet devices drawn at random (seeded) from each, does what made
// the same fix run twice on an offline device: identical triggers at once, then again
// while the first waits for the device. One execution runs; every other trigger, and
// the topic's remediation, answer with it (200, existing); the diagnosis marks the
// remediation in progress; the list and the command line show it; force runs a
// second one; on an online device a finished fix does not block the next.
func TestNoDuplicateFixOnFleetDevices(t *testing.T) {
	sim, cfg, base := startFleet(t)
	key := apiKey(t, cfg)
	c := apiclient.New(base, key)
	ctx := context.Background()

	for _, tc := range []struct {
		tenant string
		seed   uint64
	}{{"eu", 1244}, {"us", 15}} {
		t.Run(tc.tenant, func(t *testing.T) {
			ctl := nxsim.NewControlClient(sim.TenantURL(tc.tenant), nil)
			pick := func(presence string) nxsim.SampledDevice {
				devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 1, Seed: tc.seed, Platform: "Windows", Presence: presence})
				if err != nil || len(devs) != 1 {
					t.Fatalf("sample a %s Windows device of %s: %v %v", presence, tc.tenant, devs, err)
				}
				return devs[0]
			}
			offline, online := pick("offline"), pick("online")
			waitUntil(t, func() bool {
				d, err := c.Identify(ctx, events.KeyDeviceName, offline.Name)
				return err == nil && len(d.Devices) == 1 && d.Devices[0].Instance == tc.tenant
			})
			counters, err := ctl.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := counters.Endpoints["POST /api/v1/act/execute"]
			fix := map[string]any{"remote_action": "#repair_outlook_ost_problem", "device": offline.Name, "reason": "Outlook keeps asking for a repair"}

			const n = 6
			answers := make([]triggerAnswer, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { answers[i] = post(t, base, key, "/api/v1/remote-actions/executions", fix) })
			}
			wg.Wait()
			id, created := answers[0].ID, 0
			for _, a := range answers {
				if a.ID != id || (a.status != http.StatusAccepted || a.Existing) && (a.status != http.StatusOK || !a.Existing) {
					t.Fatalf("concurrent triggers: got %+v, want one execution: 202 once, 200 existing", answers)
				}
				if !a.Existing {
					created++
				}
			}
			if created != 1 {
				t.Errorf("concurrent triggers: %d created, want 1", created)
			}
			waitUntil(t, func() bool {
				e, err := c.Execution(ctx, id, 0)
				return err == nil && e.Status == events.StatusWaitingForDevice
			})
			// The employee asks again while Nexthink waits for the device.
			if a := post(t, base, key, "/api/v1/remote-actions/executions", fix); a.status != http.StatusOK || !a.Existing || a.ID != id ||
				a.Status != events.StatusWaitingForDevice {
				t.Errorf("while waiting: got %d %+v, want 200 existing %s waiting_for_device", a.status, a.Execution, id)
			}

			d, err := c.Diagnose(ctx, "outlook", offline.Name, false)
			if err != nil {
				t.Fatalf("diagnose: %v", err)
			}
			i := slices.IndexFunc(d.Remediations, func(s events.SuggestedRemedy) bool { return s.RemoteAction == "#repair_outlook_ost_problem" })
			if i < 0 || d.Remediations[i].InProgress == nil || d.Remediations[i].InProgress.ExecutionID != id ||
				d.Remediations[i].InProgress.Status != events.StatusWaitingForDevice {
				t.Fatalf("diagnosis: got remediations %+v, want repair_outlook_ost_problem in progress as %s", d.Remediations, id)
			}
			// The generic repair is offered only when the diagnosis calls for it: on a
			// device found healthy it is not ready, and running it is a conflict.
			rem := "/api/v1/topics/outlook/remediations/" + d.Remediations[i].ID
			a := post(t, base, key, rem, map[string]any{"device": offline.Name})
			switch {
			case d.Verdict == events.VerdictHealthy && (d.Remediations[i].Ready || a.status != http.StatusConflict):
				t.Errorf("the topic's remediation on a healthy device: got ready %v and %d, want not ready and 409", d.Remediations[i].Ready, a.status)
			case d.Verdict != events.VerdictHealthy && (a.status != http.StatusOK || !a.Existing || a.ID != id):
				t.Errorf("the topic's remediation: got %d %+v, want 200 existing %s", a.status, a.Execution, id)
			}

			page, err := c.Executions(ctx, apiclient.ExecutionQuery{Device: offline.Name, Statuses: []string{events.StatusWaitingForDevice}})
			if err != nil || len(page.Executions) != 1 || page.Executions[0].ID != id || page.NextCursor != "" {
				t.Errorf("list: got %+v %v, want %s alone", page, err, id)
			}
			var out, errOut bytes.Buffer
			env := cli.Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut, Version: "test"}
			if err := cli.Run(ctx, []string{"executions", "-device", offline.Name, "-status", "waiting_for_device", "-since", "1h", "-url", base, "-key", key}, env); err != nil ||
				!strings.Contains(out.String(), id) || !strings.Contains(out.String(), "waiting_for_device") {
				t.Errorf("dexbridge executions: got %v\n%s%s", err, out.String(), errOut.String())
			}

			forced := post(t, base, key, "/api/v1/remote-actions/executions", map[string]any{"remote_action": "#repair_outlook_ost_problem",
				"device": offline.CollectorUID, "force": true})
			if forced.status != http.StatusAccepted || forced.Existing || forced.ID == id {
				t.Errorf("force: got %d %+v, want a second execution", forced.status, forced.Execution)
			}
			page, err = c.Executions(ctx, apiclient.ExecutionQuery{Device: offline.CollectorUID, Limit: 1})
			if err != nil || len(page.Executions) != 1 || page.Executions[0].ID != forced.ID || page.NextCursor == "" {
				t.Fatalf("list, newest first: got %+v %v, want %s then a cursor", page, err, forced.ID)
			}
			next, err := c.Executions(ctx, apiclient.ExecutionQuery{Device: offline.CollectorUID, Limit: 1, Cursor: page.NextCursor})
			if err != nil || len(next.Executions) != 1 || next.Executions[0].ID != id {
				t.Errorf("next page: got %+v %v, want %s", next, err, id)
			}

			// An online device: the fix runs to its end, and may then run again.
			onlineFix := map[string]any{"remote_action": "#repair_outlook_ost_problem", "device": online.Name, "wait_seconds": 30}
			done := post(t, base, key, "/api/v1/remote-actions/executions", onlineFix)
			again := post(t, base, key, "/api/v1/remote-actions/executions", onlineFix)
			if done.status != http.StatusOK || done.Status != events.StatusSuccess || done.Existing ||
				again.status != http.StatusOK || again.Existing || again.ID == done.ID {
				t.Errorf("online: got %d %+v then %d %+v, want two executions that succeed", done.status, done.Execution, again.status, again.Execution)
			}
			counters, err = ctl.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if calls := counters.Endpoints["POST /api/v1/act/execute"] - before; calls != 4 {
				t.Errorf("Remote Actions API calls on %s: got %d, want 4 (the fix, the forced one, two online)", tc.tenant, calls)
			}
		})
	}
}

type triggerAnswer struct {
	status int
	api.Execution
}

// post sends a JSON body with key and decodes the execution it answers.
func post(t *testing.T, base, key, path string, body any) triggerAnswer {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out triggerAnswer
	out.status = resp.StatusCode
	if resp.StatusCode >= 300 { // a problem: the status says it all here
		return out
	}
	if err := json.NewDecoder(resp.Body).Decode(&out.Execution); err != nil {
		t.Fatalf("POST %s: %d: %v", path, resp.StatusCode, err)
	}
	return out
}
