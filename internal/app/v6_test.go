package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestMixedInfinityAndV6Deployment runs one process against an Infinity tenant
// (nxsim) and a V6 installation (nxsim's V6 mode, two Engines): devices of both
// are identified, diagnosed and remediated through the REST API; a device that
// moved between Engines is answered by the one that owns it now; and a device on
// an Engine that went down gets a clear 503, not a hang.
func TestMixedInfinityAndV6Deployment(t *testing.T) {
	timing := nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) { c.Executions = timing })
	no := false
	srv, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: 300, Seed: 11, Scenarios: &no, Executions: timing,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := testConfig(t)
	cfg.Instances = append(discoverytest.Config(sim, "eu").Instances, config.Instance{Name: "dc", Type: config.InstanceV6,
		PortalURL: srv.PortalURL(), Username: "nxsim", Password: config.Secret("nxsim-secret")})
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "remoteactions", "poller")
	key := apiKey(t, cfg)
	c := apiclient.New(base, key)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Random online Windows devices of the V6 fleet, one per Engine, not moved.
	moved := map[string]v6.MovedDevice{}
	for _, m := range srv.Info().Moved {
		moved[m.Name] = m
	}
	f := srv.Fleet()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 20))
	perEngine := map[int]fleet.Device{}
	for tries := 0; len(perEngine) < 2 && tries < 100*f.Size(); tries++ {
		d := f.Device(rng.IntN(f.Size()))
		if _, ok := moved[d.Name]; !ok && d.Online && d.Platform == "Windows" && time.Since(d.LastSeen) < 24*time.Hour {
			perEngine[srv.OwnerOf(d.Index)] = d
		}
	}
	if len(perEngine) < 2 {
		t.Fatal("no online Windows device on each Engine")
	}
	waitUntil(t, func() bool {
		d, err := c.Identify(ctx, events.KeyDeviceName, perEngine[0].Name)
		return err == nil && d.Source == events.SourceCache && len(d.Devices) == 1
	})
	euDevs, err := nxsim.NewControlClient(sim.TenantURL("eu"), nil).SampleDevices(ctx, nxsim.Sample{N: 1, Seed: rng.Uint64N(1<<40) + 1, Platform: "Windows", Presence: "online"})
	if err != nil || len(euDevs) != 1 {
		t.Fatalf("sample eu: %v", err)
	}

	// Identify, diagnose and remediate on each Engine and on the Infinity tenant.
	for _, tt := range []struct{ instance, device, uid string }{
		{"dc", perEngine[0].Name, perEngine[0].CollectorUID},
		{"dc", perEngine[1].Name, perEngine[1].CollectorUID},
		{"eu", euDevs[0].Name, euDevs[0].CollectorUID},
	} {
		found, err := c.Identify(ctx, events.KeyDeviceName, tt.device)
		if err != nil || len(found.Devices) != 1 || found.Devices[0].Instance != tt.instance || found.Devices[0].CollectorUID != tt.uid {
			t.Fatalf("identify %s: %+v %v", tt.device, found, err)
		}
		diag, err := c.Diagnose(ctx, "slow_pc", tt.device, false)
		if err != nil {
			t.Fatalf("diagnose %s on %s: %v", tt.device, tt.instance, err)
		}
		if len(diag.Rules) == 0 {
			t.Fatalf("diagnose %s: no rule evaluated: %+v", tt.device, diag)
		}
		ex, err := c.RunAction(ctx, apiclient.Trigger{RemoteAction: "#get_onedrive_status", Device: tt.device, WaitSeconds: 60, Reason: "v6 e2e"}, "")
		if err != nil {
			t.Fatalf("run on %s: %v", tt.device, err)
		}
		if ex.Status != events.StatusSuccess {
			t.Fatalf("run on %s (%s): %+v, want success", tt.device, tt.instance, ex)
		}
	}

	// A moved device (Windows if one moved): its diagnosis and its run go to the
	// Engine that owns it now.
	var m v6.MovedDevice
	var mdev fleet.Device
	for _, x := range moved {
		i, _ := f.DeviceByName(x.Name)
		if m.Name == "" || f.Device(i).Platform == "Windows" {
			m, mdev = x, f.Device(i)
		}
	}
	if _, err := c.Diagnose(ctx, "l1_device_checklist", m.Name, false); err != nil {
		t.Fatalf("diagnose moved %s: %v", m.Name, err)
	}
	if mdev.Platform == "Windows" {
		ex, err := c.RunAction(ctx, apiclient.Trigger{RemoteAction: "#get_onedrive_status", Device: m.Name, WaitSeconds: 60, Reason: "moved"}, "")
		if err != nil {
			t.Fatalf("run on moved %s: %v", m.Name, err)
		}
		if execs := f.ExecutionsOf(ex.RequestID); len(execs) != 1 || srv.Info().Engines[srv.OwnerOf(execs[0].Device)].Name != m.To {
			t.Errorf("moved %s: executions %+v, want one on %s", m.Name, execs, m.To)
		}
	}

	// An Engine down: a device on it gets a clear 503 naming it, promptly.
	if err := srv.SetFaults("engine-2", v6.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	down := perEngine[1]
	for k := range 3 { // the first calls fail and mark the Engine down; then it is not waited on
		_, err = c.Diagnose(ctx, "slow_pc", down.Name, false)
		t.Logf("attempt %d: %v", k, err)
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Code != problem.UpstreamUnavailable || !strings.Contains(pe.Detail, "engine-2") {
			t.Fatalf("diagnose on a down Engine: %v, want upstream unavailable naming engine-2", err)
		}
	}
	t.Logf("down Engine answer: %v", err)
	if _, err := c.Diagnose(ctx, "slow_pc", perEngine[0].Name, false); err != nil {
		t.Fatalf("the Engine up stopped answering: %v", err)
	}

	// Discovery with the Engine down: its devices leave the cache (the seed's
	// "considered down and its data removed"), the other Engine's stay.
	before := dcStatus(t, base, key)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/admin/discovery", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("admin discovery: %d", resp.StatusCode)
	}
	waitUntil(t, func() bool {
		st := dcStatus(t, base, key)
		return st.LastDiscovery != nil && before.LastDiscovery != nil && st.LastDiscovery.ID != before.LastDiscovery.ID &&
			st.LastDiscovery.Outcome == "success" && st.Cache.Devices < before.Cache.Devices && st.Cache.Devices > 0
	})
	if d, err := c.Identify(ctx, events.KeyDeviceName, perEngine[0].Name); err != nil || d.Source != events.SourceCache {
		t.Errorf("engine-1's %s after discovery: %+v %v, want it cached", perEngine[0].Name, d, err)
	}
	if d, err := c.Identify(ctx, events.KeyDeviceName, down.Name); err == nil && d.Source == events.SourceCache {
		t.Errorf("engine-2's %s is still cached while engine-2 is down", down.Name)
	}
}

func dcStatus(t *testing.T, base, key string) events.InstanceStatus {
	t.Helper()
	var st struct {
		Instances []events.InstanceStatus `json:"instances"`
	}
	getJSONWithKey(t, base+"/api/v1/status", key, &st)
	for _, in := range st.Instances {
		if in.Name == "dc" {
			return in
		}
	}
	t.Fatal("no instance dc in the status")
	return events.InstanceStatus{}
}
