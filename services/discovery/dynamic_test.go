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

// TestDynamicFieldsFromV6: on a V6 installation of two Engines, the categories and
// scores the Engines define are found by the device query's wildcard and cached
// under their NQL names, for devices sampled at random.
func TestDynamicFieldsFromV6(t *testing.T) {
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
	root := testenv.RepoRoot(t)
	forms, err := topic.FilesIn(root).NXQLForms()
	if err != nil {
		t.Fatal(err)
	}
	pool := testenv.Postgres(t)
	db := store.New(pool)
	set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{Forms: forms.Forms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	d := discoverytest.Discoverer(t, cfg, db, set, func(c *discovery.Config) { c.RetryFor = 5 * time.Second })
	if _, err := d.RunOnce(context.Background(), "dc", "cli", true); err != nil {
		t.Fatal(err)
	}
	e := &env{pool: pool, db: db}
	got := e.devices(t, "dc")
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
