package discovery_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// Ad-hoc queries that tell what the tenant holds, to check the cache against.
var truthQueries = map[string]string{
	"#test_all_devices": "devices | list device.name, device.collector.uid, device.last_seen",
	"#test_activity":    "session.events | summarize last = end_time.max() by device.collector.uid, user.name",
}

type env struct {
	sim  *nxsim.Instance
	pool *pgxpool.Pool
	db   *store.DB
	cfg  config.Config
}

func newEnv(t *testing.T, mod func(*nxsim.Config), tenants ...string) *env {
	t.Helper()
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Queries = truthQueries
		if mod != nil {
			mod(c)
		}
	})
	pool := testenv.Postgres(t)
	return &env{sim: sim, pool: pool, db: store.New(pool), cfg: discoverytest.Config(sim, tenants...)}
}

func (e *env) discoverer(t *testing.T, configure func(*nexthink.Config), mod func(*discovery.Config)) *discovery.Discoverer {
	t.Helper()
	return discoverytest.Discoverer(t, e.cfg, e.db, discoverytest.Instances(t, e.cfg, e.db, configure), mod)
}

// cached is a device as the cache holds it.
type cached struct {
	name     string
	lastSeen time.Time
	fields   map[string]any
}

func (e *env) devices(t *testing.T, instance string) map[string]cached {
	t.Helper()
	rows, _ := e.pool.Query(context.Background(), `SELECT collector_uid, name, last_seen, fields FROM devices WHERE instance = $1`, instance)
	out := map[string]cached{}
	var uid string
	var c cached
	_, err := pgx.ForEachRow(rows, []any{&uid, &c.name, &c.lastSeen, &c.fields}, func() error {
		out[uid] = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// activity maps "collector uid/user key" to the cached latest activity and its source.
func (e *env) activity(t *testing.T, instance string) map[string]string {
	t.Helper()
	rows, _ := e.pool.Query(context.Background(), `SELECT collector_uid || '/' || user_key, to_char(last_activity AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' ' || source
		FROM user_devices WHERE instance = $1`, instance)
	out := map[string]string{}
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { out[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// truth runs an ad-hoc query on the tenant.
func (e *env) truth(t *testing.T, tenant, query string) []map[string]any {
	t.Helper()
	c, err := nexthink.New(nexthink.Config{Instance: tenant, APIURL: e.sim.TenantURL(tenant), TokenURL: e.sim.TenantURL(tenant),
		ClientID: tenant + "-client", ClientSecret: config.Secret(tenant + "-client-secret")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	res, err := c.Execute(context.Background(), query, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

func asTime(t *testing.T, v any) time.Time {
	t.Helper()
	tm, ok := nexthink.ParseTime(v)
	if !ok {
		t.Fatalf("not a time: %v", v)
	}
	return tm
}

func health(t *testing.T, db *store.DB, instance string) store.InstanceHealth {
	t.Helper()
	hs, err := db.InstancesHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Name == instance {
			return h
		}
	}
	t.Fatalf("instance %s has no health row", instance)
	return store.InstanceHealth{}
}

// TestDiscoveryFillsTheCache checks one run against what the tenant holds: every
// device seen in the period and none older, the cached fields, the latest activity per
// user and device, the last-logon fallback, and users with their identifiers.
func TestDiscoveryFillsTheCache(t *testing.T) {
	// nxsim's times are relative to its clock: frozen, the tenant answers the same
	// times to discovery and to the checks below.
	now := time.Now()
	e := newEnv(t, func(c *nxsim.Config) { c.Clock = func() time.Time { return now } }, "eu")
	d := e.discoverer(t, nil, nil)
	run, err := d.RunOnce(context.Background(), "eu", "cli", true)
	if err != nil {
		t.Fatal(err)
	}
	if run.Outcome != store.RunSuccess || run.Attempts != 1 || run.DataAsOf == nil || run.EndedAt == nil {
		t.Fatalf("run: got %+v, want one successful attempt with its times", run)
	}

	cutoff := run.DataAsOf.Add(-30 * 24 * time.Hour)
	got := e.devices(t, "eu")
	want, old := map[string]string{}, 0
	for _, row := range e.truth(t, "eu", "#test_all_devices") {
		if asTime(t, row["device.last_seen"]).Before(cutoff) {
			old++
			continue
		}
		want[row["device.collector.uid"].(string)] = row["device.name"].(string)
	}
	if old == 0 {
		t.Fatal("the fleet has no device last seen before the period: the pruning check would be vacuous")
	}
	if len(got) != len(want) || int64(len(got)) != *run.Devices {
		t.Errorf("devices: got %d cached (run says %d), want the %d seen in the period (%d older left out)", len(got), *run.Devices, len(want), old)
	}
	for uid, name := range want {
		c, ok := got[uid]
		if !ok || c.name != name {
			t.Errorf("device %s %s: got %+v, want it cached", uid, name, c)
			continue
		}
		// The identification fields are left to their columns, and readers get them back.
		if _, ok := c.fields["device.name"]; ok {
			t.Errorf("device %s: cached fields %v hold device.name, which its column holds", name, c.fields)
		}
		read, err := e.db.DeviceWithFields(context.Background(), store.ByCollectorUID, uid)
		if err != nil {
			t.Fatal(err)
		}
		if f := read.Fields; f["device.name"] != name || f["device.collector.uid"] != uid || f["device.hardware.memory"] == nil {
			t.Errorf("device %s: fields read %v, want device.name, device.collector.uid and device.hardware.memory", name, f)
		}
		if _, err := time.Parse(time.RFC3339, read.Fields["device.last_seen"].(string)); err != nil {
			t.Errorf("device %s: device.last_seen %v, want RFC 3339", name, read.Fields["device.last_seen"])
		}
	}

	// Activity: the tenant's latest session end per device and user, in the period.
	act := e.activity(t, "eu")
	sessions := 0
	for _, row := range e.truth(t, "eu", "#test_activity") {
		uid, user := row["device.collector.uid"].(string), strings.ToLower(row["user.name"].(string))
		last := asTime(t, row["last"])
		if _, ok := want[uid]; !ok || last.Before(cutoff) {
			continue
		}
		sessions++
		if g, w := act[uid+"/"+user], last.Format("2006-01-02 15:04:05")+" session"; g != w {
			t.Errorf("activity of %s on %s: got %q, want %q", user, uid, g, w)
		}
	}
	fallback := 0
	for _, v := range act {
		if strings.HasSuffix(v, " last_logon") {
			fallback++
		}
	}
	if sessions == 0 || len(act) != sessions+fallback || int64(len(act)) != *run.Activities {
		t.Errorf("activity rows: got %d (run says %d), want %d from sessions plus %d last logons", len(act), *run.Activities, sessions, fallback)
	}
	if n := e.count(t, `SELECT count(*) FROM user_devices ud WHERE source = 'last_logon'
		AND EXISTS (SELECT 1 FROM user_devices o WHERE o.collector_uid = ud.collector_uid AND o.source = 'session')`); n != 0 {
		t.Errorf("%d last-logon rows on devices that have session activity, want none", n)
	}

	// Users: every user with activity, with the identifiers the tenant knows.
	var name, upn, sid, email, full string
	err = e.pool.QueryRow(context.Background(), `SELECT name, upn, sid, email, full_name FROM users WHERE name_key = 'jdoe' AND instance = 'eu'`).
		Scan(&name, &upn, &sid, &email, &full)
	if err != nil || name != "jdoe" || upn != "jdoe@example.com" || email != "jdoe@example.com" || full != "John Doe" || !strings.HasPrefix(sid, "S-1-5-21-") {
		t.Errorf("user jdoe: got %q %q %q %q %q (%v)", name, upn, sid, email, full, err)
	}
	if n := e.count(t, `SELECT count(*) FROM users u WHERE NOT EXISTS
		(SELECT 1 FROM user_devices ud WHERE ud.user_key = u.name_key AND ud.instance = u.instance)`); n != 0 {
		t.Errorf("%d users without activity, want none", n)
	}
	if h := health(t, e.db, "eu"); !h.Up || h.DownSince != nil {
		t.Errorf("health: got %+v, want up", h)
	}
}

// TestPruningAndRefresh: a second run reflects what changed in the tenant, and a
// shorter period prunes devices, activity and users that fell out of it.
func TestPruningAndRefresh(t *testing.T) {
	e := newEnv(t, nil, "eu")
	d := e.discoverer(t, nil, nil)
	discoverytest.Discover(t, d, "eu")
	before := e.devices(t, "eu")
	byName := map[string]cached{}
	for _, c := range before {
		byName[c.name] = c
	}
	offline, ok := byName["PC-OFFLINE"]
	if !ok || time.Since(offline.lastSeen) < 2*24*time.Hour {
		t.Fatalf("PC-OFFLINE: got %+v, want it cached, last seen days ago", offline)
	}

	// Refresh: the device comes back online in the tenant.
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/devices/online", map[string]any{"devices": []string{"PC-OFFLINE"}, "online": true}, nil)
	discoverytest.Discover(t, d, "eu")
	for _, c := range e.devices(t, "eu") {
		if c.name == "PC-OFFLINE" {
			if time.Since(c.lastSeen) > time.Hour {
				t.Errorf("PC-OFFLINE after the second run: last seen %s, want within the hour", c.lastSeen)
			}
			read, err := e.db.DeviceWithFields(context.Background(), store.ByDeviceName, c.name)
			if err != nil {
				t.Fatal(err)
			}
			if ls, _ := time.Parse(time.RFC3339, read.Fields["device.last_seen"].(string)); !ls.Equal(c.lastSeen.Truncate(time.Second)) {
				t.Errorf("PC-OFFLINE cached field device.last_seen %v, want %s", read.Fields["device.last_seen"], c.lastSeen)
			}
		}
	}

	// Pruning: with a two-day period, what is older goes.
	short := e.discoverer(t, nil, func(c *discovery.Config) { c.Period = 48 * time.Hour })
	run, err := short.RunOnce(context.Background(), "eu", "cli", true)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := run.DataAsOf.Add(-48 * time.Hour)
	after := e.devices(t, "eu")
	pruned := 0
	for uid, c := range before {
		_, kept := after[uid]
		if c.name == "PC-OFFLINE" {
			continue // back online since
		}
		switch {
		case c.lastSeen.Before(cutoff.Add(-time.Minute)) && kept:
			t.Errorf("device %s last seen %s, before the cutoff %s: want it pruned", c.name, c.lastSeen, cutoff)
		case c.lastSeen.After(cutoff.Add(time.Minute)) && !kept:
			t.Errorf("device %s last seen %s, after the cutoff %s: want it kept", c.name, c.lastSeen, cutoff)
		case !kept:
			pruned++
		}
	}
	if pruned == 0 {
		t.Error("no device was pruned by the shorter period: the check is vacuous")
	}
	for _, sql := range []string{
		`SELECT count(*) FROM user_devices WHERE last_activity < $1`,
		`SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM user_devices ud
			WHERE ud.instance = u.instance AND ud.user_key = u.name_key AND ud.last_activity >= $1)`,
		`SELECT count(*) FROM devices WHERE last_seen < $1`,
	} {
		if n := e.count(t, sql, cutoff); n != 0 {
			t.Errorf("%s: got %d rows older than the period, want none", sql, n)
		}
	}
}

// TestThreeFailuresDropTheInstanceUntilItAnswers: a tenant that is down fails three
// attempts; the instance is marked down and its cached data removed; the next good run
// brings both back.
func TestThreeFailuresDropTheInstanceUntilItAnswers(t *testing.T) {
	e := newEnv(t, nil, "eu", "us")
	d := e.discoverer(t, nil, func(c *discovery.Config) {
		c.RetryFor = 100 * time.Millisecond
		// The run after the recovery waits out the cool-down the failures set on the
		// instance's client (its gate), as a scheduled run would, then probes it.
		c.LimiterWait = 10 * time.Second
	})
	discoverytest.Discover(t, d, "eu", "us")
	usBefore := len(e.devices(t, "us"))

	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{Down: "503"})
	run, err := d.RunOnce(context.Background(), "eu", "schedule", true)
	if err == nil || run.Outcome != store.RunFailure || run.Attempts != 3 || run.Error == nil || !strings.Contains(*run.Error, "nexthink instance eu") {
		t.Fatalf("run against a down tenant: got %+v, %v; want a failure after 3 attempts naming the instance", run, err)
	}
	h := health(t, e.db, "eu")
	if h.Up || h.DownSince == nil {
		t.Errorf("health: got %+v, want down since the failure", h)
	}
	if n := len(e.devices(t, "eu")); n != 0 {
		t.Errorf("eu devices after the drop: got %d, want 0", n)
	}
	if n := e.count(t, `SELECT count(*) FROM users WHERE instance = 'eu'`) + e.count(t, `SELECT count(*) FROM user_devices WHERE instance = 'eu'`); n != 0 {
		t.Errorf("eu users and activity after the drop: got %d rows, want 0", n)
	}
	if n := len(e.devices(t, "us")); n != usBefore {
		t.Errorf("us devices: got %d, want its %d untouched", n, usBefore)
	}

	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{})
	discoverytest.Discover(t, d, "eu")
	if h := health(t, e.db, "eu"); !h.Up || h.DownSince != nil {
		t.Errorf("health after recovery: got %+v, want up", h)
	}
	if n := len(e.devices(t, "eu")); n == 0 {
		t.Error("eu devices after recovery: got none")
	}
}

// TestTokenRenewedDuringDiscovery: with a one-second token, a discovery lasting
// several seconds (its five exports, run at once, each wait twice the export delay)
// renews it as it goes, and no call is refused for an expired token.
func TestTokenRenewedDuringDiscovery(t *testing.T) {
	e := newEnv(t, func(c *nxsim.Config) { c.TokenTTL = time.Second; c.ExportDelay = 1200 * time.Millisecond }, "eu")
	d := e.discoverer(t, nil, nil)
	start := time.Now()
	discoverytest.Discover(t, d, "eu")
	c := discoverytest.Counters(t, e.sim, "eu")
	tokens := c.Endpoints["POST /oauth2/default/v1/token"]
	took := time.Since(start)
	if took < 2*time.Second {
		t.Fatalf("the discovery took %s, less than two token lifetimes: the test proves nothing", took)
	}
	if tokens < 2 {
		t.Errorf("token requests: got %d over a %s discovery with one-second tokens, want renewals", tokens, took.Round(time.Millisecond))
	}
	for ep, byStatus := range c.Responses {
		if byStatus["401"] > 0 {
			t.Errorf("%s: %d answers 401, want none (the token is renewed before it expires)", ep, byStatus["401"])
		}
	}
}

// TestRateLimitedDiscoveryRetries: the tenant answers half of the export calls 429
// with Retry-After; discovery waits as told and succeeds in its first attempt.
func TestRateLimitedDiscoveryRetries(t *testing.T) {
	e := newEnv(t, nil, "eu")
	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{RateLimitRate: 0.5, RetryAfterSeconds: 1, Groups: []string{"export"}})
	d := e.discoverer(t, nil, func(c *discovery.Config) { c.RetryFor = time.Minute })
	start := time.Now()
	run, err := d.RunOnce(context.Background(), "eu", "cli", true)
	if err != nil || run.Attempts != 1 {
		t.Fatalf("got %+v, %v; want success in one attempt", run, err)
	}
	limited := int64(0)
	for _, byStatus := range discoverytest.Counters(t, e.sim, "eu").Responses {
		limited += byStatus["429"]
	}
	if limited == 0 {
		t.Fatal("nxsim answered no 429: the test proves nothing")
	}
	// The five exports run at once, so their waits overlap: at least one in five of
	// the 429s' seconds (half of it, for scheduling) is spent waiting.
	if took := time.Since(start); took < time.Duration(limited)*time.Second/10 {
		t.Errorf("%d answers 429 with Retry-After: 1 and the run took %s: Retry-After was not honoured", limited, took)
	}
	if n := len(e.devices(t, "eu")); int64(n) != *run.Devices || n == 0 {
		t.Errorf("devices: got %d, want the run's %d", n, *run.Devices)
	}
}

// TestTwoInstancesKeepTheirDevices: each instance's devices are cached under it.
func TestTwoInstancesKeepTheirDevices(t *testing.T) {
	e := newEnv(t, nil, "eu", "us")
	discoverytest.Discover(t, e.discoverer(t, nil, nil), "eu", "us")
	for _, tt := range []struct {
		instance string
		prefixes []string
	}{
		{"eu", []string{"EU-", "PC-", "MAC-"}},
		{"us", []string{"US-"}},
	} {
		got := e.devices(t, tt.instance)
		if len(got) == 0 {
			t.Errorf("%s: no devices", tt.instance)
		}
		for _, c := range got {
			if !slices.ContainsFunc(tt.prefixes, func(p string) bool { return strings.HasPrefix(c.name, p) }) {
				t.Errorf("%s holds device %s, want only %v", tt.instance, c.name, tt.prefixes)
			}
		}
	}
	us := 0
	for _, row := range e.truth(t, "us", "#test_all_devices") {
		if time.Since(asTime(t, row["device.last_seen"])) < 29*24*time.Hour {
			us++
		}
	}
	if got := len(e.devices(t, "us")); got != us {
		t.Errorf("us: got %d devices, want the tenant's %d seen in the period", got, us)
	}
}

// TestTwoReplicasRunOneDiscovery: two discovery services on the same database start
// together; one discovers each instance, the other finds it running or recent.
func TestTwoReplicasRunOneDiscovery(t *testing.T) {
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) { c.ExportDelay = 100 * time.Millisecond })
	url := testenv.PostgresURL(t)
	cfg := discoverytest.Config(sim, "eu", "us")
	var mu sync.Mutex
	decisions := map[string][]discovery.Decision{} // per instance
	decided := map[string]map[int]bool{}           // per instance, the replicas that decided
	var services []*discovery.Service
	for replica := range 2 {
		db := store.New(testenv.Migrated(t, url))
		d := discoverytest.Discoverer(t, cfg, db, discoverytest.Instances(t, cfg, db, nil), nil)
		svc := discovery.New(discovery.Options{Discoverer: d, DB: db, Refresh: time.Hour, Recheck: 50 * time.Millisecond,
			ShutdownTimeout: 5 * time.Second, Observe: func(dec discovery.Decision) {
				mu.Lock()
				defer mu.Unlock()
				decisions[dec.Instance] = append(decisions[dec.Instance], dec)
				if decided[dec.Instance] == nil {
					decided[dec.Instance] = map[int]bool{}
				}
				decided[dec.Instance][replica] = true
			}})
		services = append(services, svc)
	}
	// Both start at once, so both find the instances due.
	for replica, svc := range services {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %d: %v", replica, err)
			}
		})
	}
	// Each replica decides per instance: one runs the discovery, the other finds it
	// running (busy), just done (recent) or not due (wait) and waits for the next period.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		settled := len(decided["eu"]) == 2 && len(decided["us"]) == 2
		mu.Unlock()
		if settled {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("replicas did not both decide: %+v", decisions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := store.New(pool)
	for _, name := range []string{"eu", "us"} {
		runs, err := db.DiscoveryRuns(context.Background(), name, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].Outcome != store.RunSuccess {
			t.Errorf("%s: got runs %+v, want exactly one, successful", name, runs)
		}
		if n := discoverytest.Counters(t, sim, name).Queries[discovery.QueryDevices]; n != 2 {
			t.Errorf("%s: the device query ran %d times, want 2 (Windows and macOS, once)", name, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for name, ds := range decisions {
		if n := len(slices.DeleteFunc(slices.Clone(ds), func(d discovery.Decision) bool { return d.Action != "ran" })); n != 1 {
			t.Errorf("%s: %d replicas ran a discovery, want 1: %+v", name, n, ds)
		}
	}
}

// TestBusyLeaseRefusesASecondRun: while a run holds the lease, another begins nothing.
func TestBusyLeaseRefusesASecondRun(t *testing.T) {
	e := newEnv(t, nil, "eu")
	d := e.discoverer(t, nil, nil)
	run, err := d.Begin(context.Background(), "eu", "api", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Begin(context.Background(), "eu", "api", true); !errors.Is(err, discovery.ErrBusy) {
		t.Errorf("second begin: got %v, want ErrBusy", err)
	}
	if _, err := run.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	var recent *discovery.RecentError
	if _, err := d.Begin(context.Background(), "eu", "schedule", false); !errors.As(err, &recent) || recent.Last.ID != run.ID() {
		t.Errorf("scheduled begin right after a run: got %v, want a RecentError naming run %d", err, run.ID())
	}
}

// TestCancelledRunDoesNotDelayTheNext: a run cut short by a shutdown refreshed
// nothing, so a restarted replica discovers at once instead of waiting a period.
func TestCancelledRunDoesNotDelayTheNext(t *testing.T) {
	e := newEnv(t, nil, "eu")
	d := e.discoverer(t, nil, nil)
	run, err := d.Begin(context.Background(), "eu", "schedule", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the process stops before the run gets anywhere
	_, _ = run.Execute(ctx)
	next, err := d.Begin(context.Background(), "eu", "schedule", false)
	if err != nil {
		t.Fatalf("scheduled begin after a cancelled run: got %v, want a new run", err)
	}
	if _, err := next.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
}
