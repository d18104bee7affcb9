package app_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/store"
)

// TestV6RoutesAndEnginesAcrossProcesses runs a V6 installation (nxsim, two
// Engines) behind several processes: the routes one process's discovery learns
// are used by a worker in another process; a device found on the Engine it moved
// to by one worker is asked there alone by a worker started afterwards; and an
// Engine that goes down, then answers again, shows in GET /api/v1/status.
func TestV6RoutesAndEnginesAcrossProcesses(t *testing.T) {
	no := false
	srv, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: 300, Seed: rand.Int64N(1<<30) + 1, Scenarios: &no,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := testConfig(t)
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: srv.PortalURL(),
		Username: "nxsim", Password: config.Secret("nxsim-secret")}}
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	cfg.Cache.MaxAge = config.Duration(time.Second) // the diagnoses ask the Engines, not the cache
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery")
	_, stopTopics := start(t, cfg, "ingress", "topics") // the diagnoses run in another process (its ingress says when it is up)
	key := apiKey(t, cfg)
	c := apiclient.New(base, key)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	moved := map[string]v6.MovedDevice{}
	for _, m := range srv.Info().Moved {
		moved[m.Name] = m
	}
	f := srv.Fleet()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 21))
	perEngine := map[int]fleet.Device{}
	for tries := 0; len(perEngine) < 2 && tries < 100*f.Size(); tries++ {
		d := f.Device(rng.IntN(f.Size()))
		if _, ok := moved[d.Name]; !ok && time.Since(d.LastSeen) < 24*time.Hour {
			perEngine[srv.OwnerOf(d.Index)] = d
		}
	}
	if len(perEngine) < 2 {
		t.Fatal("no recent device on each Engine")
	}
	waitUntil(t, func() bool {
		st := dcStatus(t, base, key)
		return st.LastDiscovery != nil && st.LastDiscovery.Outcome == "success"
	})
	engines := srv.Info().Engines
	time.Sleep(1100 * time.Millisecond) // the cache is now older than MaxAge: not a timing assertion, a precondition

	// The topics process never ran a discovery: it asks each device's Engine alone.
	for k, d := range perEngine {
		srv.ResetCounters()
		if _, err := c.Diagnose(ctx, "l1_device_checklist", d.Name, false); err != nil {
			t.Fatalf("diagnose %s: %v", d.Name, err)
		}
		if n := srv.Counters()[engines[k].Name].Queries; n == 0 {
			t.Fatalf("diagnosing %s asked nothing of %s", d.Name, engines[k].Name)
		}
		if other := engines[1-k].Name; srv.Counters()[other].Calls != 0 {
			t.Errorf("diagnosing %s (on %s) asked %s: discovery's routes are not shared", d.Name, engines[k].Name, other)
		}
	}

	// A device that moved, whose shared route is old and names the Engine it
	// left: the topics process asks every Engine and finds it on the other one;
	// a topics process started afterwards asks only that one.
	var m v6.MovedDevice
	for _, x := range moved {
		m = x
		break
	}
	pool, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `UPDATE v6_routes SET engine = $1, learned_at = now() - interval '1 hour'
		WHERE instance = 'dc' AND device_key IN ($2, $3)`, m.From, "uid:"+strings.ToLower(m.CollectorUID), "name:"+strings.ToLower(m.Name)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Diagnose(ctx, "l1_device_checklist", m.Name, false); err != nil {
		t.Fatalf("diagnose moved %s: %v", m.Name, err)
	}
	waitUntil(t, func() bool {
		var engine string
		err := pool.QueryRow(ctx, `SELECT engine FROM v6_routes WHERE instance = 'dc' AND device_key = $1`,
			"name:"+strings.ToLower(m.Name)).Scan(&engine)
		return err == nil && engine == m.To
	})
	if err := stopTopics(); err != nil {
		t.Fatal(err)
	}
	start(t, cfg, "ingress", "topics")
	srv.ResetCounters()
	if _, err := c.Diagnose(ctx, "l1_device_checklist", m.Name, false); err != nil {
		t.Fatalf("diagnose moved %s from a new process: %v", m.Name, err)
	}
	if n := srv.Counters()[m.To].Queries; n == 0 {
		t.Fatalf("the new topics process asked nothing of %s", m.To)
	}
	if n := srv.Counters()[m.From].Calls; n != 0 {
		t.Errorf("the new topics process asked %s, which %s left, %d times", m.From, m.Name, n)
	}

	// engine-2 goes down: the status shows it down with its failures and last
	// success; it comes back: the status shows it up.
	st := dcStatus(t, base, key)
	if st.Upstream != "v6" || len(st.Engines) != 2 {
		t.Fatalf("status of dc: upstream %q, engines %+v", st.Upstream, st.Engines)
	}
	if err := srv.SetFaults("engine-2", v6.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	down := perEngine[1]
	engine2 := func() events.EngineStatus {
		for _, e := range dcStatus(t, base, key).Engines {
			if e.Name == "engine-2" {
				return e
			}
		}
		return events.EngineStatus{}
	}
	waitUntil(t, func() bool {
		_, _ = c.Diagnose(ctx, "l1_device_checklist", down.Name, false)
		e := engine2()
		return e.State == "down" && e.DownSince != nil && e.LastSuccessAt != nil && e.LastError != ""
	})
	if err := srv.SetFaults("engine-2", v6.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { // its probe is due within 30 seconds
		_, _ = c.Diagnose(ctx, "l1_device_checklist", down.Name, false)
		e := engine2()
		return e.State == "up" && e.ConsecutiveFailures == 0 && e.DownSince == nil
	})
}
