package instances_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/upstream"
)

// clock is the time every "process" of a test shares, so routes age at will.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// v6Process is the V6 instance "dc" as one worker process builds it: its own
// driver (own in-memory routes and health) on the shared database.
func v6Process(t *testing.T, srv *v6.Server, db *store.DB, clk *clock) upstream.Driver {
	t.Helper()
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: srv.PortalURL(),
		Username: "nxsim", Password: config.Secret("nxsim-secret")}}
	cfg.Limits.EngineRequestsPerSecond, cfg.Limits.PortalRequestsPerSecond = 1000, 1000
	forms, err := topic.FilesIn(filepath.Join("..", "..")).NXQLForms()
	if err != nil {
		t.Fatal(err)
	}
	set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{Forms: forms.Forms, DB: db,
		ConfigureV6: func(c *nexthinkv6.Config) {
			c.Clock, c.RetryFor, c.ProbeEvery = clk.now, 200*time.Millisecond, time.Minute
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	in, _ := set.Get("dc")
	return in.Client
}

func startFleet(t *testing.T, size int) *v6.Server {
	t.Helper()
	srv, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: size, Seed: rand.Int64N(1<<30) + 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestRoutesAreSharedByEveryProcess: one process's discovery teaches every
// device's Engine to a second process, which then asks that Engine alone; a
// device found on another Engine by one process is asked there by the other.
func TestRoutesAreSharedByEveryProcess(t *testing.T) {
	srv := startFleet(t, 400)
	db := store.New(testenv.Postgres(t))
	clk := &clock{t: time.Now()}
	ctx := context.Background()
	a, b := v6Process(t, srv, db, clk), v6Process(t, srv, db, clk)
	engines := srv.Info().Engines

	// Process a discovers (both platforms); process b has never seen a device.
	for _, p := range []string{"Windows", "macOS"} {
		if err := a.Export(ctx, "#dexbridge_discovery_devices", map[string]string{"platform": p}, func(_, _ []string) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	moved := map[string]v6.MovedDevice{}
	for _, m := range srv.Info().Moved {
		moved[m.Name] = m
	}
	f := srv.Fleet()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	asked := 0
	for tries := 0; asked < 6 && tries < 1000; tries++ {
		dev := f.Device(rng.IntN(f.Size()))
		if _, ok := moved[dev.Name]; ok || time.Since(dev.LastSeen) > 29*24*time.Hour {
			continue // moved ones below; one near the window's edge may be out of the discovery
		}
		owner := engines[srv.OwnerOf(dev.Index)].Name
		srv.ResetCounters()
		res, err := b.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": dev.Name})
		if err != nil || len(res.Rows) != 1 {
			t.Fatalf("%s (%s) from process b: %v %v", dev.Name, dev.Platform, res, err)
		}
		for name, c := range srv.Counters() {
			if name != owner && c.Calls != 0 {
				t.Errorf("process b asked %s about %s (on %s): the route discovery learned in process a is unused", name, dev.Name, owner)
			}
		}
		asked++
	}
	if asked == 0 {
		t.Fatal("no device sampled")
	}

	// A moved device whose shared route still names the Engine it left (a
	// discovery before the move): process b, told so, is answered by the stale
	// copy; once the route is old, process a asks every Engine and finds it on
	// the other one; process b follows at once, asking only that Engine.
	var m v6.MovedDevice
	for _, x := range moved {
		m = x
		break
	}
	if m.Name == "" {
		t.Fatal("nxsim moved no device")
	}
	key := "uid:" + strings.ToLower(m.CollectorUID)
	if err := db.SaveV6Routes(ctx, "dc", []store.V6Route{{Key: key, Engine: m.From, LearnedAt: clk.now()},
		{Key: "name:" + strings.ToLower(m.Name), Engine: m.From, LearnedAt: clk.now()}}); err != nil {
		t.Fatal(err)
	}
	basic := func(p upstream.Driver) map[string]any {
		t.Helper()
		res, err := p.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": m.Name})
		if err != nil || len(res.Rows) != 1 {
			t.Fatalf("%s: %v %v", m.Name, res, err)
		}
		return res.Rows[0]
	}
	srv.ResetCounters()
	stale := basic(b)
	if c := srv.Counters()[m.To]; c.Calls != 0 {
		t.Fatalf("process b asked %s while the route named %s", m.To, m.From)
	}
	clk.add(nexthinkv6.DefaultRouteTTL + time.Second)
	fresh := basic(a)
	if seen, _ := nexthink.ParseTime(fresh["device.last_seen"]); !seen.After(parseTime(t, stale["device.last_seen"])) {
		t.Fatalf("the fan-out answered %v, not later than the stale copy's %v", fresh["device.last_seen"], stale["device.last_seen"])
	}
	testenv.Eventually(t, "the route to the Engine the device moved to is shared", func() bool {
		got, err := db.V6Routes(ctx, "dc", []string{key})
		return err == nil && got[key].Engine == m.To
	})
	clk.add(nexthinkv6.DefaultRouteCacheTTL + time.Second)
	srv.ResetCounters()
	// The Engine's copy reports a last_seen that follows the clock (nxsim's fleet is
	// seen until now), so it is compared with the stale copy's, not with fresh's.
	if got := basic(b); !parseTime(t, got["device.last_seen"]).After(parseTime(t, stale["device.last_seen"])) {
		t.Errorf("process b answered %v, want the copy of %s (%v)", got["device.last_seen"], m.To, fresh["device.last_seen"])
	}
	if c := srv.Counters()[m.To]; c.Calls == 0 {
		t.Errorf("process b did not ask %s, the Engine the device moved to", m.To)
	}
	if c := srv.Counters()[m.From]; c.Calls != 0 {
		t.Errorf("process b still asked %s, the Engine the device left", m.From)
	}
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	at, ok := nexthink.ParseTime(v)
	if !ok {
		t.Fatalf("not a time: %v", v)
	}
	return at
}

// TestEngineHealthIsShared: an Engine that fails three calls in a row is
// recorded down with its failures and last success, and up again once it
// answers, whichever process saw it.
func TestEngineHealthIsShared(t *testing.T) {
	srv := startFleet(t, 200)
	db := store.New(testenv.Postgres(t))
	clk := &clock{t: time.Now()}
	ctx := context.Background()
	a := v6Process(t, srv, db, clk)
	all := func() {
		_, _ = a.Execute(ctx, "#get_device_basic_infos", map[string]string{"username": "nobody"})
	}
	engineRow := func(name string) (store.V6Engine, bool) {
		rows, err := db.V6Engines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Instance == "dc" && r.Engine == name {
				return r, true
			}
		}
		return store.V6Engine{}, false
	}
	all()
	testenv.Eventually(t, "both Engines reported up", func() bool {
		e1, ok1 := engineRow("engine-1")
		e2, ok2 := engineRow("engine-2")
		return ok1 && ok2 && !e1.Down && !e2.Down && e2.LastSuccessAt != nil
	})
	before, _ := engineRow("engine-2")
	if err := srv.SetFaults("engine-2", v6.Faults{RefuseStatus: 500}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		all()
	}
	testenv.Eventually(t, "engine-2 reported down after three failures", func() bool {
		e, _ := engineRow("engine-2")
		return e.Down && e.ConsecutiveFailures >= 3 && e.DownSince != nil && e.LastError != "" &&
			e.LastSuccessAt != nil && e.LastSuccessAt.Equal(*before.LastSuccessAt)
	})
	if e, _ := engineRow("engine-1"); e.Down {
		t.Errorf("engine-1 reported down: %+v", e)
	}
	if err := srv.SetFaults("engine-2", v6.Faults{}); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute + time.Second) // its probe is due
	all()
	testenv.Eventually(t, "engine-2 reported up again", func() bool {
		e, _ := engineRow("engine-2")
		return !e.Down && e.ConsecutiveFailures == 0 && e.DownSince == nil && e.LastSuccessAt.After(*before.LastSuccessAt)
	})
}
