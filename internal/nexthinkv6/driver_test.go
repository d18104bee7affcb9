package nexthinkv6_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

func forms(t testing.TB) []nxql.Form {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "nxql", "testdata", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := nxql.ParseForms(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func startV6(t *testing.T, engines int) *v6.Server {
	t.Helper()
	s, err := v6.Start(context.Background(), v6.Config{Engines: engines, FleetSize: 300, Seed: 7,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Executions: nxsim.ExecutionTiming{Pending: 20 * time.Millisecond, Running: 50 * time.Millisecond, Tick: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clock is a settable time source for the driver's health and routes.
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

func newDriver(t *testing.T, s *v6.Server, mod func(*nexthinkv6.Config)) (*nexthinkv6.Driver, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	cfg := nexthinkv6.Config{Instance: "dc", PortalURL: s.PortalURL(), Username: "nxsim", Password: config.Secret("nxsim-secret"),
		Forms: forms(t), RetryFor: 2 * time.Second, Clock: clk.now}
	if mod != nil {
		mod(&cfg)
	}
	d, err := nexthinkv6.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.CloseIdleConnections)
	return d, clk
}

// sample picks devices of the fleet at random (both platforms, online or not),
// not the moved ones.
func sample(t *testing.T, s *v6.Server, n int) []fleet.Device {
	t.Helper()
	moved := map[string]bool{}
	for _, m := range s.Info().Moved {
		moved[m.Name] = true
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	f := s.Fleet()
	var out []fleet.Device
	platforms := map[string]bool{}
	for tries := 0; len(out) < n || len(platforms) < 2; tries++ {
		if tries > 10*f.Size() {
			t.Fatal("cannot sample the fleet")
		}
		d := f.Device(rng.IntN(f.Size()))
		if moved[d.Name] {
			continue
		}
		out = append(out, d)
		platforms[d.Platform] = true
	}
	return out
}

// within reports whether at (whole seconds) is between from and to.
func within(at, from, to time.Time) bool {
	return !at.Before(from.Truncate(time.Second)) && !at.After(to)
}

func engineOf(s *v6.Server, d fleet.Device) string {
	return s.Info().Engines[s.OwnerOf(d.Index)].Name
}

// TestDevicesAnswerFromTheirEngine: a query about a device reads the same values
// as the fleet, and the driver learns the Engine that holds it.
func TestDevicesAnswerFromTheirEngine(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, nil)
	ctx := context.Background()
	for _, dev := range sample(t, s, 8) {
		res, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": dev.Name})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 1 {
			t.Fatalf("%s: %d rows, want 1", dev.Name, len(res.Rows))
		}
		r := res.Rows[0]
		if r["device.collector.uid"] != dev.CollectorUID || r["device.operating_system.platform"] != dev.Platform {
			t.Errorf("%s: row %v", dev.Name, r)
		}
		// An online device's last_seen follows the clock: it lies between the
		// fleet's value before the query and after it.
		after := s.Fleet().Device(dev.Index).LastSeen
		if seen, ok := nexthink.ParseTime(r["device.last_seen"]); !ok || !within(seen, dev.LastSeen, after) {
			t.Errorf("%s: last_seen %v, want %v to %v", dev.Name, r["device.last_seen"], dev.LastSeen.UTC(), after.UTC())
		}
		if got, ok := d.RouteOf(dev.CollectorUID); !ok || got != engineOf(s, dev) {
			t.Errorf("%s: routed to %q, want %s", dev.Name, got, engineOf(s, dev))
		}
	}
	// Routed now: a second query about a device asks its Engine only.
	dev := sample(t, s, 1)[0]
	if _, err := d.Execute(ctx, "#get_device_basic_infos_by_collector_uid", map[string]string{"collector_uid": dev.CollectorUID}); err != nil {
		t.Fatal(err)
	}
	s.ResetCounters()
	if _, err := d.Execute(ctx, "#get_device_basic_infos_by_collector_uid", map[string]string{"collector_uid": dev.CollectorUID}); err != nil {
		t.Fatal(err)
	}
	for name, c := range s.Counters() {
		if (c.Calls > 0) != (name == engineOf(s, dev)) {
			t.Errorf("engine %s got %d calls; the device is on %s", name, c.Calls, engineOf(s, dev))
		}
	}
}

// TestMovedDeviceIsFollowed: a device listed by the Engine it left and by the one
// it moved to is answered by the latter.
func TestMovedDeviceIsFollowed(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, nil)
	moved := s.Info().Moved
	if len(moved) == 0 {
		t.Fatal("nxsim moved no device")
	}
	m := moved[rand.IntN(len(moved))]
	i, _ := s.Fleet().DeviceByName(m.Name)
	dev := s.Fleet().Device(i)
	res, err := d.Execute(context.Background(), "#get_device_basic_infos_by_device_name", map[string]string{"device_name": m.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("%d rows, want the one of the Engine that owns it", len(res.Rows))
	}
	if seen, _ := nexthink.ParseTime(res.Rows[0]["device.last_seen"]); !within(seen, dev.LastSeen, s.Fleet().Device(i).LastSeen) {
		t.Errorf("last_seen %v: the stale copy of %s answered, want %v", seen, m.From, dev.LastSeen)
	}
	if got, _ := d.RouteOf(m.CollectorUID); got != m.To {
		t.Errorf("routed to %q, want %s (it left %s)", got, m.To, m.From)
	}
	// A run goes to the Engine it moved to.
	resp, err := d.Trigger(context.Background(), nexthink.TriggerRequest{RemoteActionID: "#get_onedrive_status", Devices: []string{m.CollectorUID}})
	if err != nil {
		t.Fatal(err)
	}
	if ex := s.Fleet().ExecutionsOf(resp.RequestID); len(ex) != 1 || ex[0].Device != i {
		t.Fatalf("executions %+v, want one on %s", ex, m.Name)
	}
}

// TestTriggerAndPollAcrossEngines: runs on devices of both Engines are read back
// by the poller's grouped query, one query per Engine.
func TestTriggerAndPollAcrossEngines(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, nil)
	ctx := context.Background()
	devs := sample(t, s, 6)
	want := map[string]string{} // request id -> collector uid
	engines := map[string]bool{}
	for k, dev := range devs {
		if k%2 == 0 { // half of them routed first, half not
			if _, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": dev.Name}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := d.Trigger(ctx, nexthink.TriggerRequest{RemoteActionID: "#get_onedrive_status", Devices: []string{dev.CollectorUID}, ExpiresInMinutes: 60})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ExpiresInMinutes != 60 {
			t.Errorf("expires in %d", resp.ExpiresInMinutes)
		}
		want[resp.RequestID] = dev.CollectorUID
		engines[engineOf(s, dev)] = true
	}
	params := map[string]string{}
	k := 1
	for id := range want {
		params["request_id_"+itoa(k)] = id
		k++
	}
	for ; k <= 250; k++ {
		params["request_id_"+itoa(k)] = "00000000-0000-0000-0000-000000000000"
	}
	// An execution shows from the second after it was created (a window ends at
	// now, to the second): poll as the poller does until every one shows.
	eventually(t, func() bool {
		s.ResetCounters()
		res, err := d.Execute(ctx, "#dexbridge_remote_action_results", params)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range s.Counters() {
			if c.Queries != 1 {
				t.Fatalf("engine %s answered %d queries for one tick, want 1", name, c.Queries)
			}
		}
		got := map[string]string{}
		for _, r := range res.Rows {
			id, _ := r["remote_action.executions.request_id"].(string)
			got[id], _ = r["device.collector.uid"].(string)
		}
		for id, uid := range want {
			if !strings.EqualFold(got[id], uid) {
				return false
			}
		}
		return len(got) == len(want)
	})
}

// eventually polls cond until it holds, or fails the test after 30 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		<-tick.C
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestEngineDownIsReportedNotWaitedOn: an Engine that stops answering is marked
// down after three failures; a device on it gets a clear unavailable answer
// naming it, the other Engine keeps answering, and the Engine comes back when its
// probe succeeds.
func TestEngineDownIsReportedNotWaitedOn(t *testing.T) {
	s := startV6(t, 2)
	d, clk := newDriver(t, s, func(c *nexthinkv6.Config) { c.ProbeEvery = time.Minute })
	ctx := context.Background()
	devs := sample(t, s, 12)
	var on1, on2 []fleet.Device
	for _, dev := range devs {
		if engineOf(s, dev) == "engine-1" {
			on1 = append(on1, dev)
		} else {
			on2 = append(on2, dev)
		}
	}
	if len(on1) == 0 || len(on2) == 0 {
		t.Skip("sample fell on one Engine")
	}
	if err := s.SetFaults("engine-2", v6.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": on2[0].Name})
		var ne *nexthink.Error
		if !errors.As(err, &ne) || ne.Code != nexthink.CodeUnavailable || !strings.Contains(nexthink.Problem(err).Detail, "engine-2") {
			t.Fatalf("got %v, want unavailable naming engine-2", err)
		}
		if p := nexthink.Problem(err); p.Code != problem.UpstreamUnavailable {
			t.Fatalf("problem %s", p.Code)
		}
	}
	down := false
	for _, h := range d.Health() {
		if h.Name == "engine-2" {
			down = h.Down
		}
	}
	if !down {
		t.Fatalf("health %+v: engine-2 not marked down", d.Health())
	}
	// Marked down: not called at all, the other Engine answers.
	s.ResetCounters()
	if _, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": on1[0].Name}); err != nil {
		t.Fatal(err)
	}
	if c := s.Counters()["engine-2"]; c.Calls != 0 {
		t.Errorf("engine-2 was called %d times while down", c.Calls)
	}
	_, err := d.Trigger(ctx, nexthink.TriggerRequest{RemoteActionID: "#get_onedrive_status", Devices: []string{on2[0].CollectorUID}})
	var ne *nexthink.Error
	if !errors.As(err, &ne) || ne.Code != nexthink.CodeUnavailable || !ne.NotRun() {
		t.Fatalf("trigger on a down Engine: %v", err)
	}
	// Back up: after ProbeEvery one probe goes through and the Engine answers.
	if err := s.SetFaults("engine-2", v6.Faults{}); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute)
	res, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": on2[0].Name})
	if err != nil || len(res.Rows) != 1 {
		t.Fatalf("after recovery: %v %v", res, err)
	}
	for _, h := range d.Health() {
		if h.Down {
			t.Errorf("%s still down", h.Name)
		}
	}
}

// TestEngineLimits: each Engine has its own limiter; a call beyond it is refused
// as rate limited without reaching the Engine.
func TestEngineLimits(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, func(c *nexthinkv6.Config) {
		c.EngineLimiter = func(engine string) nexthink.Limiter {
			return ratelimit.NewLocal("nql:dc/"+engine, ratelimit.Rate{PerSecond: 0.001, Burst: 2})
		}
		c.MaxWait = time.Millisecond
	})
	dev := sample(t, s, 1)[0]
	ctx := context.Background()
	if _, err := d.Execute(ctx, "#get_device_basic_infos_by_collector_uid", map[string]string{"collector_uid": dev.CollectorUID}); err != nil {
		t.Fatal(err) // two queries per Engine: each Engine.s burst
	}
	s.ResetCounters()
	_, err := d.Execute(ctx, "#get_device_basic_infos_by_collector_uid", map[string]string{"collector_uid": dev.CollectorUID})
	if p := nexthink.Problem(err); p.Code != problem.RateLimited || p.RetryAfter <= 0 {
		t.Fatalf("got %v, want rate limited with a Retry-After", err)
	}
	for name, c := range s.Counters() {
		if c.Calls != 0 {
			t.Errorf("engine %s called %d times past its limit", name, c.Calls)
		}
	}
}

// TestUnknownQueryAndBadCredentials: a query without an NXQL form is not found;
// refused credentials say so.
func TestUnknownQueryAndBadCredentials(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, nil)
	_, err := d.Execute(context.Background(), "#no_such_query", nil)
	if p := nexthink.Problem(err); p.Code != problem.NotFound {
		t.Fatalf("unknown query: %v", err)
	}
	bad, _ := newDriver(t, s, func(c *nexthinkv6.Config) { c.Password = config.Secret("wrong") })
	_, err = bad.Execute(context.Background(), "#get_device_basic_infos", map[string]string{"username": "x"})
	if p := nexthink.Problem(err); p.Code != problem.UpstreamUnavailable || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad credentials: %v", err)
	}
	if _, err := bad.RemoteAction(context.Background(), "#get_onedrive_status"); err == nil {
		t.Fatal("RemoteAction: want the not-described error")
	}
}

// TestExportDiscoversBothPlatformsOnEveryEngine: discovery's device query returns
// every device seen in the window, once, from the Engine that owns it.
func TestExportDiscoversBothPlatformsOnEveryEngine(t *testing.T) {
	s := startV6(t, 3)
	d, _ := newDriver(t, s, nil)
	ctx := context.Background()
	seen := map[string]int{}
	for _, p := range []string{"Windows", "macOS"} {
		err := d.Export(ctx, "#dexbridge_discovery_devices", map[string]string{"platform": p}, func(h, rec []string) error {
			for k, c := range h {
				if c == "device.collector.uid" {
					seen[strings.ToLower(rec[k])]++
				}
				if c == "device.operating_system.platform" && rec[k] != p {
					t.Errorf("platform %s in the %s export", rec[k], p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f := s.Fleet()
	window := time.Now().Add(-30 * 24 * time.Hour)
	want := 0
	for i := range f.Size() {
		dev := f.Device(i)
		if dev.LastSeen.Before(window.Add(time.Minute)) {
			if dev.LastSeen.After(window.Add(-time.Minute)) { // at the edge as the query ran: either way
				delete(seen, strings.ToLower(dev.CollectorUID))
			}
			continue
		}
		want++
		if seen[strings.ToLower(dev.CollectorUID)] != 1 {
			t.Errorf("%s listed %d times", dev.Name, seen[strings.ToLower(dev.CollectorUID)])
		}
	}
	if want == 0 || len(seen) != want {
		t.Errorf("%d devices exported, want %d", len(seen), want)
	}
	for _, m := range s.Info().Moved {
		if got, _ := d.RouteOf(m.CollectorUID); got != m.To {
			t.Errorf("moved %s routed to %q, want %s", m.Name, got, m.To)
		}
	}
}

// TestDiscoveryWindowIsTheActivityPeriod: discovery's device and activity queries
// select USER_ACTIVITY_PERIOD, not the forms' 30 days.
func TestDiscoveryWindowIsTheActivityPeriod(t *testing.T) {
	s := startV6(t, 2)
	count := func(period time.Duration) (int, time.Time) {
		d, _ := newDriver(t, s, func(c *nexthinkv6.Config) { c.ActivityPeriod = period })
		n := 0
		oldest := time.Now()
		for _, p := range []string{"Windows", "macOS"} {
			err := d.Export(context.Background(), "#dexbridge_discovery_devices", map[string]string{"platform": p}, func(h, rec []string) error {
				n++
				for k, c := range h {
					if c == "device.last_seen" {
						if at, ok := nexthink.ParseTime(rec[k]); ok && at.Before(oldest) {
							oldest = at
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return n, oldest
	}
	all, _ := count(0)
	week, oldest := count(7 * 24 * time.Hour)
	if week == 0 || week >= all {
		t.Fatalf("7 days: %d devices, 30 days: %d", week, all)
	}
	if time.Since(oldest) > 7*24*time.Hour+time.Minute {
		t.Errorf("a device last seen %v ago is in the 7-day window", time.Since(oldest))
	}
}

// TestRouteRetentionOutlivesTrust: the configuration refuses a retention of the
// routes shorter than the time the driver trusts one (config cannot import this
// package, so it keeps its own copy of the figure).
func TestRouteRetentionOutlivesTrust(t *testing.T) {
	if config.MinV6RouteRetention < nexthinkv6.DefaultRouteTTL {
		t.Errorf("config.MinV6RouteRetention %s is shorter than DefaultRouteTTL %s", config.MinV6RouteRetention, nexthinkv6.DefaultRouteTTL)
	}
}
