package app_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestTwoTenantsInOneProcess runs the product against nxsim's two tenants, which
// share user names: a user-only alert fired from each tenant reaches the person of
// that tenant, through the webhook source bound to it, not their look-alike; and a
// device last seen long before USER_ACTIVITY_PERIOD is found and diagnosed.
func TestTwoTenantsInOneProcess(t *testing.T) {
	const password = "tenants-test-password"
	t.Setenv("WEBHOOK_NEXTHINK_PASSWORD", password)
	t.Setenv("WEBHOOK_NEXTHINK_US_PASSWORD", password)
	sim := discoverytest.StartSim(t, nil)
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu", "us").Instances
	// The shipped rules (source nexthink, bound to eu) and a source bound to us.
	shipped, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "config", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Webhooks.File = filepath.Join(t.TempDir(), "webhooks.yaml")
	rules := string(shipped) + `
  - name: nexthink-us
    instance: us
    auth: {type: basic, username: nexthink}
    fields: {monitor: monitor, status: status, device: device, user: user, trigger_time: trigger_time}
    monitors:
      - {name: Outlook crashes, message: "Hi {{user}}, Outlook has been crashing on {{device}}."}
`
	if err := os.WriteFile(cfg.Webhooks.File, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop := start(t, cfg, "ingress", "devices", "discovery", "topics", "webhooks")
	key := apiKey(t, cfg)
	c := apiclient.New(base, key)
	ctx := context.Background()
	waitUntil(t, func() bool {
		var st struct {
			Instances []events.InstanceStatus `json:"instances"`
		}
		if getJSONWithKey(t, base+"/api/v1/status", key, &st) != 200 || len(st.Instances) != 2 {
			return false
		}
		for _, in := range st.Instances {
			if in.State != "up" || in.Cache.Devices == 0 {
				return false
			}
		}
		return true
	})

	// A user online in both tenants, a different person in each.
	control := func(tenant string) *nxsim.ControlClient { return nxsim.NewControlClient(sim.TenantURL(tenant), nil) }
	sample := func(tenant string) map[string]nxsim.SampledDevice {
		devs, err := control(tenant).SampleDevices(ctx, nxsim.Sample{N: 1000, Seed: 53, Presence: "online"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]nxsim.SampledDevice{}
		for _, d := range devs {
			out[d.User] = d
		}
		return out
	}
	eu, us := sample("eu"), sample("us")
	var user string
	for _, name := range slices.Sorted(maps.Keys(us)) {
		if _, ok := eu[name]; ok && eu[name].UserSID != us[name].UserSID {
			user = name
			break
		}
	}
	if user == "" {
		t.Fatal("no user online in both tenants")
	}
	both, err := c.Identify(ctx, events.KeyUsername, user)
	if err != nil || !both.Ambiguous || len(both.People) != 2 {
		t.Fatalf("identify %s: got %+v %v, want two people", user, both, err)
	}

	payload := `{"monitor": "{{alert.monitor.name}}", "status": "{{alert.status}}", "user": "{{user.name}}", "trigger_time": "{{alert.trigger_time}}"}`
	for _, tt := range []struct{ tenant, source string }{{"eu", "nexthink"}, {"us", "nexthink-us"}} {
		own, err := c.IdentifyOn(ctx, events.KeyUsername, user, tt.tenant)
		if err != nil || len(own.People) != 1 {
			t.Fatalf("%s's %s: got %+v %v", tt.tenant, user, own, err)
		}
		var ownDevices []string
		for _, d := range own.Devices {
			ownDevices = append(ownDevices, d.Name)
		}
		out, err := control(tt.tenant).FireAlert(ctx, nxsim.FireAlert{Monitor: "Outlook crashes", User: user, Webhook: &nxsim.Webhook{
			URL: base, Path: "/api/v1/webhooks/" + tt.source, Payload: payload,
			Auth: &nxsim.WebhookAuth{Type: "basic", Username: "nexthink", Password: password}}})
		if err != nil {
			t.Fatalf("fire from %s: %v (%s)", tt.tenant, err, out)
		}
		t.Logf("fired from %s: %s", tt.tenant, out)
		var ev *events.ProactiveEvent
		waitUntil(t, func() bool {
			var feed struct {
				Events []events.ProactiveEvent `json:"events"`
			}
			getJSONWithKey(t, base+"/api/v1/proactive/events", key, &feed)
			for _, e := range feed.Events {
				if e.Source == tt.source {
					ev = &e
				}
			}
			return ev != nil
		})
		if ev.Employee == nil || ev.Employee.Name != user || ev.Device == nil || ev.Device.Instance != tt.tenant ||
			!slices.Contains(ownDevices, ev.Device.Name) {
			t.Errorf("alert for %s from %s: got employee %+v device %+v, want %s's person on one of %v", user, tt.tenant, ev.Employee, ev.Device, tt.tenant, ownDevices)
		}
	}

	// A device last seen more than 30 days ago: not cached, found live, diagnosable.
	old, err := control("eu").SampleDevices(ctx, nxsim.Sample{N: 100, Seed: 59, Presence: "long_unseen"})
	if err != nil {
		t.Fatal(err)
	}
	var gone *nxsim.SampledDevice
	for _, d := range old {
		if time.Since(d.LastSeen) > 31*24*time.Hour {
			gone = &d
			break
		}
	}
	if gone == nil {
		t.Fatal("no eu device last seen more than 31 days ago")
	}
	found, err := c.Identify(ctx, events.KeyDeviceName, gone.Name)
	if err != nil || found.Source != events.SourceLive || len(found.Devices) != 1 || found.Devices[0].Presence != events.PresenceOffline {
		t.Fatalf("identify %s (last seen %v): got %+v %v, want it live and offline", gone.Name, gone.LastSeen, found, err)
	}
	d, err := c.Diagnose(ctx, "l1_device_checklist", gone.Name, false)
	if err != nil || d.Device.Name != gone.Name || d.Device.Instance != "eu" {
		t.Errorf("diagnose %s: got %+v %v, want a diagnosis of it", gone.Name, d, err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
