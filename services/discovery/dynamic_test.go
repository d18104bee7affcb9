package discovery_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/discovery"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// sameValue compares a cached JSON value with the tenant's: numbers as float64.
func sameValue(cached, truth any) bool {
	switch x := truth.(type) {
	case int64:
		return cached == float64(x)
	case int:
		return cached == float64(x)
	}
	return cached == truth
}

// TestDynamicFieldsFromInfinity: the custom fields and scores the tenant lists in
// its saved device query are cached beside the configured fields, with the
// tenant's values, for devices sampled at random.
func TestDynamicFieldsFromInfinity(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(c *nxsim.Config) {
		c.Clock = func() time.Time { return now }
		c.Queries["#test_dynamic"] = "devices | list device.collector.uid, device.last_seen, " +
			"device.#department, device.#location, device.score.device_health, device.score.device_health.restart"
	}, "eu")
	d := e.discoverer(t, nil, nil)
	run, err := d.RunOnce(context.Background(), "eu", "cli", true)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := run.DataAsOf.Add(-30 * 24 * time.Hour)
	truth := map[string]map[string]any{}
	for _, row := range e.truth(t, "eu", "#test_dynamic") {
		truth[row["device.collector.uid"].(string)] = row
	}
	seed := uint64(time.Now().UnixNano())%(1<<40) + 1
	sample, err := nxsim.NewControlClient(e.sim.TenantURL("eu"), nil).SampleDevices(context.Background(), nxsim.Sample{N: 15, Seed: seed})
	if err != nil || len(sample) == 0 {
		t.Fatalf("sample: %v", err)
	}
	got := e.devices(t, "eu")
	checked := 0
	for _, s := range sample {
		want := truth[s.CollectorUID]
		c, ok := got[s.CollectorUID]
		if asTime(t, want["device.last_seen"]).Before(cutoff) {
			if ok {
				t.Errorf("device %s (seed %d): cached, but last seen before the period", s.Name, seed)
			}
			continue
		}
		if !ok {
			t.Errorf("device %s (seed %d): not cached", s.Name, seed)
			continue
		}
		checked++
		for _, f := range fleet.DynamicFields() {
			if v, ok := c.fields[f]; !ok || !sameValue(v, want[f]) {
				t.Errorf("device %s (seed %d): %s cached as %v (%v), the tenant says %v", s.Name, seed, f, v, ok, want[f])
			}
		}
		if _, ok := c.fields["device.hardware.memory"]; !ok {
			t.Errorf("device %s: the configured fields are gone: %v", s.Name, c.fields)
		}
	}
	if checked == 0 {
		t.Fatalf("no sampled device (seed %d) was seen in the period: the check proved nothing", seed)
	}
	t.Logf("%d sampled devices (seed %d) checked", checked, seed)
}

// v6Env is a V6 installation of two Engines (nxsim's V6 mode, a random fleet)
// and a discoverer of it as instance "dc"; a down Engine is probed again at once.
type v6Env struct {
	*env
	srv *v6.Server
	d   *discovery.Discoverer
}

func newV6Env(t *testing.T, period time.Duration) *v6Env {
	t.Helper()
	no := false
	srv, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: 200, Seed: time.Now().UnixNano()%(1<<40) + 1,
		Scenarios: &no, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: srv.PortalURL(),
		Username: "nxsim", Password: config.Secret("nxsim-secret")}}
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	if period > 0 {
		cfg.Cache.UserActivityPeriod = config.Duration(period)
	}
	forms, err := topic.FilesIn(testenv.RepoRoot(t)).NXQLForms()
	if err != nil {
		t.Fatal(err)
	}
	pool := testenv.Postgres(t)
	db := store.New(pool)
	set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{Forms: forms.Forms,
		ConfigureV6: func(c *nexthinkv6.Config) { c.ProbeEvery = time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	d := discoverytest.Discoverer(t, cfg, db, set, func(c *discovery.Config) { c.RetryFor = 5 * time.Second })
	return &v6Env{env: &env{pool: pool, db: db}, srv: srv, d: d}
}

// TestDynamicFieldsFromV6: on a V6 installation of two Engines, the categories and
// scores the Engines define are found by the device query's wildcard and cached
// under their NQL names, for devices sampled at random.
func TestDynamicFieldsFromV6(t *testing.T) {
	v := newV6Env(t, 0)
	srv, d := v.srv, v.d
	if _, err := d.RunOnce(context.Background(), "dc", "cli", true); err != nil {
		t.Fatal(err)
	}
	got := v.devices(t, "dc")
	f := srv.Fleet()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 22))
	checked := 0
	for range 15 {
		dev := f.Device(rng.IntN(f.Size()))
		c, ok := got[dev.CollectorUID]
		if time.Since(dev.LastSeen) > 29*24*time.Hour {
			continue // at the period's edge or out of it
		}
		if !ok {
			t.Errorf("device %s (engine %d): not cached", dev.Name, srv.OwnerOf(dev.Index))
			continue
		}
		rows, _ := f.Lookup(context.Background(), "devices", "device.collector.uid", []string{dev.CollectorUID})
		if len(rows) != 1 {
			t.Fatalf("device %s: %d fleet rows", dev.Name, len(rows))
		}
		checked++
		for _, name := range fleet.DynamicFields() {
			if v, ok := c.fields[name]; !ok || !sameValue(v, rows[0].Value(name)) {
				t.Errorf("device %s: %s cached as %v (%v), the fleet says %v", dev.Name, name, v, ok, rows[0].Value(name))
			}
		}
		for name := range c.fields {
			if len(name) > 8 && name[:8] == "device.#" && name != fleet.FieldDepartment && name != fleet.FieldLocation {
				t.Errorf("device %s: unexpected dynamic field %s", dev.Name, name)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no sampled device was seen in the period: the check proved nothing")
	}
	t.Logf("%d sampled devices checked", checked)
}

// TestV6EngineDownLeavesTheCacheUntilItAnswers: discovery with an Engine down
// succeeds with the other Engine's devices, and the down Engine's devices (and
// their dynamic fields) come back with the first discovery it answers again.
func TestV6EngineDownLeavesTheCacheUntilItAnswers(t *testing.T) {
	v := newV6Env(t, 0)
	ctx := context.Background()
	info := v.srv.Info()
	moved := map[string]bool{}
	for _, m := range info.Moved {
		moved[m.CollectorUID] = true
	}
	// owned lists the cached devices each Engine alone holds.
	owned := func() map[int]int {
		out := map[int]int{}
		f := v.srv.Fleet()
		for uid, c := range v.devices(t, "dc") {
			i, ok := f.DeviceByName(c.name)
			if !ok || moved[uid] {
				continue
			}
			out[v.srv.OwnerOf(i)]++
			if _, ok := c.fields[fleet.FieldHealthScore]; !ok {
				t.Errorf("device %s: no %s cached", c.name, fleet.FieldHealthScore)
			}
		}
		return out
	}
	if _, err := v.d.RunOnce(ctx, "dc", "cli", true); err != nil {
		t.Fatal(err)
	}
	before := owned()
	if before[0] == 0 || before[1] == 0 {
		t.Fatalf("devices per Engine: %v, want some on each", before)
	}
	down := info.Engines[1].Name
	if err := v.srv.SetFaults(down, v6.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	if run, err := v.d.RunOnce(ctx, "dc", "cli", true); err != nil || run.Outcome != store.RunSuccess {
		t.Fatalf("discovery with %s down: %+v %v, want a success with the other Engine", down, run, err)
	}
	if got := owned(); got[1] != 0 || got[0] != before[0] {
		t.Fatalf("devices per Engine with %s down: %v, want only the first Engine's %d", down, got, before[0])
	}
	if err := v.srv.SetFaults(down, v6.Faults{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, down+"'s devices cached again", func() bool {
		_, err := v.d.RunOnce(ctx, "dc", "cli", true)
		return err == nil && owned()[1] == before[1]
	})
}

// TestV6DiscoveryKeepsTheActivityPeriod: with USER_ACTIVITY_PERIOD shorter than the
// forms' 30 days, the devices cached are those the fleet saw within it, on both
// Engines.
func TestV6DiscoveryKeepsTheActivityPeriod(t *testing.T) {
	const period = 5 * 24 * time.Hour
	v := newV6Env(t, period)
	run, err := v.d.RunOnce(context.Background(), "dc", "cli", true)
	if err != nil {
		t.Fatal(err)
	}
	got := v.devices(t, "dc")
	f := v.srv.Fleet()
	in, out := 0, 0
	for i := range f.Size() {
		dev := f.Device(i)
		age := run.DataAsOf.Sub(dev.LastSeen)
		if age > period-time.Hour && age < period+time.Hour {
			continue // at the period's edge: the clocks may differ by a run's length
		}
		_, cached := got[dev.CollectorUID]
		switch {
		case age < period && !cached:
			t.Errorf("device %s seen %s ago: not cached", dev.Name, age.Round(time.Minute))
		case age > period && cached:
			t.Errorf("device %s seen %s ago: cached, but the period is %s", dev.Name, age.Round(time.Minute), period)
		case age < period:
			in++
		case age < 30*24*time.Hour:
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("%d devices in the period, %d out of it but within 30 days: the check proved nothing", in, out)
	}
	t.Logf("%d devices in the period cached, %d seen 5 to 30 days ago left out", in, out)
}
