// Package discoverytest helps tests that need a discovered cache: an nxsim tenant
// emulator in-process, the configuration of its instances, its control API, and a
// discovery run into a test's PostgreSQL schema.
package discoverytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/services/discovery"
)

// StartSim starts nxsim on a free port with the repository's topics and saved
// queries, fast exports and a small fleet (200 devices in eu, 20 in us); mod may
// change its configuration. It stops when t ends.
func StartSim(t testing.TB, mod func(*nxsim.Config)) *nxsim.Instance {
	t.Helper()
	root := testenv.RepoRoot(t)
	cfg := nxsim.Config{
		Addr: "127.0.0.1:0", FleetSize: 200,
		TopicsDir: filepath.Join(root, "topics"), QueriesFile: filepath.Join(root, "config", "queries.yaml"),
		Logger: slog.New(slog.DiscardHandler), ExportDelay: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	sim, err := nxsim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("nxsim: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("nxsim close: %v", err)
		}
	})
	return sim
}

// Config is a dexbridge configuration whose instances are the named nxsim tenants,
// with their "<name>-client" credentials.
func Config(sim *nxsim.Instance, tenants ...string) config.Config {
	cfg := config.Default()
	for _, name := range tenants {
		cfg.Instances = append(cfg.Instances, config.Instance{
			Name: name, APIURL: sim.TenantURL(name), TokenURL: sim.TenantURL(name),
			ClientID: name + "-client", ClientSecret: config.Secret(name + "-client-secret"),
		})
	}
	return cfg
}

// Instances builds the instances of cfg on db's shared limiters; configure may tune
// their clients. Their idle connections close when t ends.
func Instances(t testing.TB, cfg config.Config, db *store.DB, configure func(*nexthink.Config)) *instances.Set {
	t.Helper()
	set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{Configure: configure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set
}

// Discoverer returns a discoverer of cfg's instances with quick retries (three
// attempts 10 ms apart, calls retried for at most a second) and the cached fields of
// the repository's topics; mod may change its configuration.
func Discoverer(t testing.TB, cfg config.Config, db *store.DB, set *instances.Set, mod func(*discovery.Config)) *discovery.Discoverer {
	t.Helper()
	topics, err := topic.FilesIn(testenv.RepoRoot(t)).Load()
	if err != nil {
		t.Fatal(err)
	}
	fields, err := discovery.CachedFields(topics, nil)
	if err != nil {
		t.Fatal(err)
	}
	dc := discovery.Config{
		DB: db, Instances: set, Fields: fields, Refresh: cfg.Cache.Refresh.D(), Period: cfg.Cache.UserActivityPeriod.D(),
		Backoff: 10 * time.Millisecond, LimiterWait: time.Second, RetryFor: time.Second,
	}
	if mod != nil {
		mod(&dc)
	}
	d, err := discovery.NewDiscoverer(dc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Discover runs one discovery of each instance and fails t unless each succeeds.
func Discover(t testing.TB, d *discovery.Discoverer, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := d.RunOnce(context.Background(), name, "cli", true); err != nil {
			t.Fatalf("discovery of %s: %v", name, err)
		}
	}
}

// Control calls the control API of an nxsim tenant and decodes the answer into out.
func Control(t testing.TB, sim *nxsim.Instance, tenant, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, sim.TenantURL(tenant)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// SetFaults replaces a tenant's faults.
func SetFaults(t testing.TB, sim *nxsim.Instance, tenant string, f nxsim.Faults) {
	t.Helper()
	Control(t, sim, tenant, http.MethodPut, "/_nxsim/faults", f, nil)
}

// Counters reads a tenant's call counters.
func Counters(t testing.TB, sim *nxsim.Instance, tenant string) nxsim.Counters {
	t.Helper()
	var c nxsim.Counters
	Control(t, sim, tenant, http.MethodGet, "/_nxsim/counters", nil, &c)
	return c
}
