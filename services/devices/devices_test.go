package devices_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/devices"
	"github.com/dexbridge/dexbridge/services/discovery"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// env is the request path of identification on real servers: the ingress handler,
// NATS, the devices and discovery workers, PostgreSQL, and nxsim as the tenant.
type env struct {
	t       *testing.T
	sim     *nxsim.Instance
	db      *store.DB
	cfg     config.Config
	handler http.Handler
	rpc     *natsrpc.Client // to the workers, as the ingress calls them
	subj    events.Subjects
	reader  string // API key with the read scope
	admin   string // API key with the read and admin scopes
}

type envOptions struct {
	sim        func(*nxsim.Config)
	tenants    []string
	discover   bool                // discover every instance before serving
	cacheLimit float64             // cache reads per second; default 1000
	noWorker   bool                // no discovery worker (which discovers at start): the cache stays empty
	refused    func(apiKey string) // told of each refusal by the cache's budget
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if len(o.tenants) == 0 {
		o.tenants = []string{"eu", "us"}
	}
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Queries = map[string]string{"#test_user": "users | where user.name == $name | list user.name, user.sid"}
		if o.sim != nil {
			o.sim(c)
		}
	})
	db := store.New(testenv.Postgres(t))
	nc := testenv.NATS(t)
	subjects := events.NewSubjects(testenv.Prefix(t))
	cfg := discoverytest.Config(sim, o.tenants...)
	set := discoverytest.Instances(t, cfg, db, nil)
	d := discoverytest.Discoverer(t, cfg, db, set, func(c *discovery.Config) { c.Conn, c.Subjects = nc, subjects })
	if o.discover {
		discoverytest.Discover(t, d, o.tenants...)
	}
	limit := o.cacheLimit
	if limit == 0 {
		limit = 1000
	}
	limiters := ratelimit.NewShared(db)
	tuning := devices.DefaultConfig()
	tuning.Refresh, tuning.Concurrency, tuning.ShutdownTimeout, tuning.Live.RetryFor = time.Hour, 16, 5*time.Second, 500*time.Millisecond
	dev, err := devices.New(devices.Options{
		Conn: nc, Subjects: subjects, Cache: db, Instances: set, Config: tuning,
		CacheLimiter: ratelimit.Observed(limiters.Limiter(ratelimit.CacheKey+":"+testenv.Prefix(t), ratelimit.Rate{PerSecond: limit, Burst: max(1, int(limit))}), o.refused),
		Log:          logging.Discard(), Version: "0.0.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	disc := discovery.New(discovery.Options{Discoverer: d, DB: db, Conn: nc, Subjects: subjects, Refresh: time.Hour,
		Recheck: time.Hour, ShutdownTimeout: 5 * time.Second, Version: "0.0.0"})
	runners := []interface{ Run(context.Context) error }{dev, disc}
	if o.noWorker {
		runners = runners[:1]
	}
	for _, r := range runners {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker stopped with %v", err)
			}
		})
	}
	h := apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, 10*time.Second), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: limiters, Subjects: subjects, Log: logging.Discard(),
	}))
	e := &env{t: t, sim: sim, db: db, cfg: cfg, handler: h, rpc: natsrpc.NewClient(nc, 10*time.Second), subj: subjects}
	e.reader = e.key("reader", "read")
	e.admin = e.key("operator", "read", "admin")
	return e
}

func (e *env) key(name string, scopes ...string) string {
	e.t.Helper()
	return apitest.Key(e.t, e.db, name, scopes...)
}

// do sends a request with key and decodes the JSON answer into out (when not nil).
func (e *env) do(method, path, key, body string, out any) *http.Response {
	e.t.Helper()
	return apitest.Do(e.t, e.handler, method, path, key, body, out)
}

type identifyAnswer struct {
	Devices  []events.Device `json:"devices"`
	Source   string          `json:"source"`
	DataAsOf *time.Time      `json:"data_as_of"`
}

func (e *env) identify(key, value string) (int, identifyAnswer) {
	e.t.Helper()
	var a identifyAnswer
	resp := e.do(http.MethodGet, "/api/v1/devices?"+url.Values{key: {value}}.Encode(), e.reader, "", &a)
	return resp.StatusCode, a
}

func names(ds []events.Device) []string {
	out := make([]string, len(ds))
	for k, d := range ds {
		out[k] = d.Instance + "/" + d.Name
	}
	return out
}

func TestIdentifyByEachKey(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	_, byName := e.identify(events.KeyDeviceName, "pc-healthy") // names match whatever their case
	if len(byName.Devices) != 1 {
		t.Fatalf("PC-HEALTHY: got %+v", byName)
	}
	uid := byName.Devices[0].CollectorUID
	var user map[string]any
	for _, row := range e.truth("eu", "#test_user", map[string]string{"name": "jdoe"}) {
		user = row
	}
	sid, _ := user["user.sid"].(string)
	if !strings.HasPrefix(sid, "S-1-5-21-") {
		t.Fatalf("jdoe's SID: got %v", user)
	}

	jdoe := []string{"eu/PC-OUTLOOK-OFFLINE", "eu/MAC-HEALTHY"} // most recently active first
	tests := []struct {
		key, value string
		want       []string
		user       string
	}{
		{events.KeyUsername, "jdoe", jdoe, "jdoe"},
		{events.KeyUsername, "JDoe", jdoe, "jdoe"},
		{events.KeyUPN, "jdoe@example.com", jdoe, "jdoe"},
		{events.KeyEmail, "JDOE@example.com", jdoe, "jdoe"},
		{events.KeySID, sid, jdoe, "jdoe"},
		{events.KeyDeviceName, "PC-HEALTHY", []string{"eu/PC-HEALTHY"}, "bwayne"},
		{events.KeyCollectorUID, strings.ToUpper(uid), []string{"eu/PC-HEALTHY"}, "bwayne"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			code, got := e.identify(tt.key, tt.value)
			if code != 200 || got.Source != events.SourceCache || got.DataAsOf == nil || time.Since(*got.DataAsOf) > time.Hour {
				t.Fatalf("got %d %+v, want 200 from the cache with data_as_of", code, got)
			}
			if !slices.Equal(names(got.Devices), tt.want) {
				t.Errorf("devices: got %v, want %v", names(got.Devices), tt.want)
			}
			for _, d := range got.Devices {
				if d.MatchedBy != tt.key || d.User != tt.user || d.LastSeen == nil || d.LastActivity == nil ||
					d.ActivitySource != "session" || d.Platform == "" || d.OSName == "" || d.HardwareType == "" ||
					d.HardwareManufacturer == "" || len(d.CollectorUID) != 36 {
					t.Errorf("device %s: got %+v, want every field, matched by %s, user %s", d.Name, d, tt.key, tt.user)
				}
			}
		})
	}
	// The US instance's devices are identified as the US instance's.
	code, us := e.identify(events.KeyDeviceName, "US-000003")
	if code != 200 || !slices.Equal(names(us.Devices), []string{"us/US-000003"}) {
		t.Errorf("US-000003: got %d %v, want it on instance us", code, names(us.Devices))
	}
}

func (e *env) truth(tenant, query string, params map[string]string) []map[string]any {
	e.t.Helper()
	in, _ := discoverytest.Instances(e.t, e.cfg, e.db, nil).Get(tenant)
	res, err := in.Client.Execute(context.Background(), query, params)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Rows
}

func TestIdentifyRefusesMalformedRequests(t *testing.T) {
	e := newEnv(t, envOptions{discover: false, tenants: []string{"eu"}})
	tests := []struct {
		name, query, field string
	}{
		{"no key", "", "username"},
		{"two keys", "username=jdoe&upn=jdoe@example.com", "upn"},
		{"unknown parameter", "user=jdoe", "user"},
		{"key given twice", "username=a&username=b", "username"},
		{"wildcard user", "username=j*", "username"},
		{"control character", "username=" + url.QueryEscape("jd\noe"), "username"},
		{"upn without domain", "upn=jdoe", "upn"},
		{"email without dot", "email=jdoe@example", "email"},
		{"not a sid", "sid=S-2-5-21", "sid"},
		{"device path", "device_name=" + url.QueryEscape("../etc"), "device_name"},
		{"not a uuid", "collector_uid=1234", "collector_uid"},
		{"empty value", "device_name=", "device_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p map[string]any
			resp := e.do(http.MethodGet, "/api/v1/devices?"+tt.query, e.reader, "", &p)
			if resp.StatusCode != 400 || p["code"] != "invalid_request" || p["field"] != tt.field ||
				resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("got %d %v, want 400 problem naming %s", resp.StatusCode, p, tt.field)
			}
		})
	}
	if resp := e.do(http.MethodGet, "/api/v1/devices?username=jdoe", "", "", nil); resp.StatusCode != 401 {
		t.Errorf("without a key: got %d, want 401", resp.StatusCode)
	}
}

// TestLiveFallback: with nothing cached, identification asks every instance that is
// up, and says so; an instance marked down is not asked; nothing found is an empty list.
func TestLiveFallback(t *testing.T) {
	e := newEnv(t, envOptions{noWorker: true})
	code, got := e.identify(events.KeyUPN, "jdoe@example.com")
	if code != 200 || got.Source != events.SourceLive || !slices.Equal(names(got.Devices), []string{"eu/PC-OUTLOOK-OFFLINE", "eu/MAC-HEALTHY"}) {
		t.Fatalf("got %d %+v, want jdoe's two devices, live", code, got)
	}
	if d := got.Devices[0]; d.LastActivity == nil || d.LastSeen == nil || d.MatchedBy != events.KeyUPN || d.Platform != "Windows" {
		t.Errorf("live device: got %+v", d)
	}
	for _, tenant := range []string{"eu", "us"} {
		if n := discoverytest.Counters(t, e.sim, tenant).Queries["#get_device_basic_infos_by_upn"]; n != 1 {
			t.Errorf("%s: asked %d times, want once", tenant, n)
		}
	}
	code, got = e.identify(events.KeyUsername, "jdoe")
	if code != 200 || got.Source != events.SourceLive || len(got.Devices) != 2 {
		t.Errorf("by user name (the query of the guide): got %d %+v", code, got)
	}
	if err := e.db.MarkInstanceDown(context.Background(), "us"); err != nil {
		t.Fatal(err)
	}
	code, got = e.identify(events.KeyDeviceName, "NO-SUCH-PC")
	if code != 200 || got.Source != events.SourceLive || got.Devices == nil || len(got.Devices) != 0 {
		t.Errorf("unknown device: got %d %+v, want 200 with an empty list", code, got)
	}
	if n := discoverytest.Counters(t, e.sim, "us").Queries["#get_device_basic_infos_by_device_name"]; n != 0 {
		t.Errorf("us is down but was asked %d times", n)
	}
	// Every instance failing is the answer: eu is unavailable now, us is down.
	discoverytest.SetFaults(t, e.sim, "eu", nxsim.Faults{Down: "503"})
	var p map[string]any
	resp := e.do(http.MethodGet, "/api/v1/devices?sid=S-1-5-21-1-2-3-1001", e.reader, "", &p)
	if resp.StatusCode != 503 || p["code"] != "upstream_unavailable" || resp.Header.Get("Retry-After") == "" || !strings.Contains(p["detail"].(string), "eu") {
		t.Errorf("every instance failing: got %d %v, want 503 upstream_unavailable naming eu", resp.StatusCode, p)
	}
}

func TestCacheReadsAreRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{discover: true, tenants: []string{"eu"}, cacheLimit: 0.1})
	if code, got := e.identify(events.KeyUsername, "bwayne"); code != 200 || len(got.Devices) != 1 {
		t.Fatalf("first read: got %d %+v", code, got)
	}
	var p map[string]any
	resp := e.do(http.MethodGet, "/api/v1/devices?username=bwayne", e.reader, "", &p)
	if resp.StatusCode != 429 || p["code"] != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second read within the limit: got %d %v %v, want 429 with Retry-After", resp.StatusCode, p, resp.Header)
	}
	if n := discoverytest.Counters(t, e.sim, "eu").Queries["#get_device_basic_infos"]; n != 0 {
		t.Errorf("a refused read went to the tenant %d times", n)
	}
}

// TestCacheBudgetSharedFairly: with the cache at 40 reads a second, a noisy API key
// asks as fast as eight callers go while a quiet key asks four times a second through
// the REST API. Once the worker has seen a second of it, and until the noisy key has
// been refused 50 times, the quiet key is answered every time, and each refusal is
// reported under its key's id. (The noisy key calls the worker over NATS, as the
// ingress does, so that it outruns the budget however loaded the machine is.)
func TestCacheBudgetSharedFairly(t *testing.T) {
	const noisyID = "key_noisy"
	var mu sync.Mutex
	refusedTo := map[string]int{}
	e := newEnv(t, envOptions{discover: true, tenants: []string{"eu"}, cacheLimit: 40, refused: func(apiKey string) {
		mu.Lock()
		defer mu.Unlock()
		refusedTo[apiKey]++
	}})
	quiet, quietKey, err := auth.NewKeys(e.db).Create(context.Background(), auth.NewKey{Name: "quiet", Scopes: []string{"read"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.reader = quiet // e.identify's key
	start := time.Now()
	learnt := start.Add(time.Second)
	var noisyOK, noisyRefused, noisyLater atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	ctx := natsrpc.WithHeader(context.Background(), events.HeaderAPIKeyID, noisyID)
	req := events.DevicesIdentifyRequest{Header: events.NewHeader(events.TypeDevicesIdentifyRequest), Key: events.KeyUsername, Value: "bwayne"}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var reply events.DevicesIdentifyReply
				err := e.rpc.Call(ctx, e.subj.Of(events.DevicesIdentify), req, &reply)
				switch code := problem.CodeOf(err); {
				case err == nil:
					noisyOK.Add(1)
				case code == problem.RateLimited:
					noisyRefused.Add(1)
					if time.Now().After(learnt) {
						noisyLater.Add(1)
					}
				default:
					t.Errorf("noisy key: %v", err)
					return
				}
			}
		})
	}
	asked, served, quietRefused := 0, 0, 0 // quietRefused counts the first second too
	deadline := start.Add(time.Minute)
	for noisyLater.Load() < 50 || asked < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute the noisy key had %d refusals and the quiet one %d calls", noisyLater.Load(), asked)
		}
		time.Sleep(250 * time.Millisecond) // the quiet key's pace, not an assertion
		code, _ := e.identify(events.KeyUsername, "bwayne")
		if code == 429 {
			quietRefused++
		}
		if time.Now().Before(learnt) {
			continue
		}
		asked++
		if code == 200 {
			served++
		}
	}
	close(done)
	wg.Wait()
	if served != asked {
		t.Errorf("quiet key: %d of %d answered, want all", served, asked)
	}
	if noisyOK.Load() == 0 {
		t.Errorf("noisy key: nothing answered, %d refused; want its share", noisyRefused.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{noisyID: int(noisyRefused.Load())}
	if quietRefused > 0 {
		want[quietKey.ID] = quietRefused
	}
	if !maps.Equal(refusedTo, want) {
		t.Errorf("refusals reported: %v, want %v", refusedTo, want)
	}
	t.Logf("quiet: %d of %d answered; noisy: %d answered, %d refused", served, asked, noisyOK.Load(), noisyRefused.Load())
}

type deviceAnswer struct {
	Device       events.DeviceDetail `json:"device"`
	OtherMatches []events.DeviceRef  `json:"other_matches"`
	Note         string              `json:"note"`
	Source       string              `json:"source"`
	DataAsOf     *time.Time          `json:"data_as_of"`
}

// TestGetDevice: one device with its cached fields, by name or collector UID; a name
// on two instances answers the most recently seen and names the other.
func TestGetDevice(t *testing.T) {
	yes := true
	e := newEnv(t, envOptions{discover: true, sim: func(c *nxsim.Config) {
		c.Tenants = []nxsim.TenantConfig{{Name: "eu", Scenarios: &yes}, {Name: "us", Size: 20, Scenarios: &yes}}
	}})
	var a deviceAnswer
	if resp := e.do(http.MethodGet, "/api/v1/devices/PC-LOW-DISK", e.reader, "", &a); resp.StatusCode != 200 {
		t.Fatalf("got %d %+v", resp.StatusCode, a)
	}
	d := a.Device
	if d.Name != "PC-LOW-DISK" || d.Fields["device.name"] != "PC-LOW-DISK" || d.Fields["device.collector.uid"] != d.CollectorUID ||
		d.LastLogonUser != "asmith" || len(d.Users) == 0 || d.Users[0].Name != "asmith" || a.Source != "cache" || a.DataAsOf == nil {
		t.Errorf("device: got %+v", a)
	}
	// The tenant's dynamic fields are cached fields too.
	if dep, _ := d.Fields[fleet.FieldDepartment].(string); dep == "" {
		t.Errorf("device: %s is %v, want the tenant's custom field", fleet.FieldDepartment, d.Fields[fleet.FieldDepartment])
	}
	if score, ok := d.Fields[fleet.FieldHealthScore].(float64); !ok || score < 0 || score > 10 {
		t.Errorf("device: %s is %v, want the tenant's score", fleet.FieldHealthScore, d.Fields[fleet.FieldHealthScore])
	}
	if len(a.OtherMatches) != 1 || a.OtherMatches[0].Instance == d.Instance || a.OtherMatches[0].Name != "PC-LOW-DISK" || a.Note == "" {
		t.Errorf("a name on two instances: got other matches %+v, note %q; want the other instance named", a.OtherMatches, a.Note)
	}
	if a.OtherMatches[0].LastSeen.After(*d.LastSeen) {
		t.Errorf("answered %s seen %s, but %s was seen later, %s", d.Instance, d.LastSeen, a.OtherMatches[0].Instance, a.OtherMatches[0].LastSeen)
	}
	var byUID deviceAnswer
	if resp := e.do(http.MethodGet, "/api/v1/devices/"+a.OtherMatches[0].CollectorUID, e.reader, "", &byUID); resp.StatusCode != 200 ||
		byUID.Device.Instance != a.OtherMatches[0].Instance || len(byUID.OtherMatches) != 0 {
		t.Errorf("by collector uid: got %d %+v", resp.StatusCode, byUID)
	}
	_, both := e.identify(events.KeyDeviceName, "PC-LOW-DISK")
	if got := names(both.Devices); len(got) != 2 || got[0] == got[1] {
		t.Errorf("identify a name on two instances: got %v, want both", got)
	}
	for path, want := range map[string]int{"/api/v1/devices/NOPE-404": 404, "/api/v1/devices/bad*name": 400} {
		var p map[string]any
		if resp := e.do(http.MethodGet, path, e.reader, "", &p); resp.StatusCode != want {
			t.Errorf("%s: got %d %v, want %d", path, resp.StatusCode, p, want)
		}
	}
}

// TestStatusAndOnDemandDiscovery: the status of each instance, and a discovery started
// with the admin endpoint through NATS.
func TestStatusAndOnDemandDiscovery(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	var st struct {
		Instances []events.InstanceStatus `json:"instances"`
		Cache     events.CacheSize        `json:"cache"`
	}
	if resp := e.do(http.MethodGet, "/api/v1/status", e.reader, "", &st); resp.StatusCode != 200 || len(st.Instances) != 2 {
		t.Fatalf("status: got %d %+v", resp.StatusCode, st)
	}
	total := int64(0)
	for _, in := range st.Instances {
		r := in.LastDiscovery
		if in.State != "up" || r == nil || r.Outcome != "success" || r.EndedAt == nil || r.Devices == nil ||
			*r.Devices != in.Cache.Devices || in.Cache.Users == 0 || in.Cache.Activities == 0 || in.DataAsOf == nil ||
			in.NextDiscoveryAt == nil || !in.NextDiscoveryAt.Equal(r.StartedAt.Add(time.Hour)) {
			t.Errorf("instance %s: got %+v (last run %+v)", in.Name, in, r)
		}
		total += in.Cache.Devices
	}
	if st.Cache.Devices != total {
		t.Errorf("cache total: got %d devices, want %d", st.Cache.Devices, total)
	}
	first := st.Instances[0].LastDiscovery.ID

	if resp := e.do(http.MethodPost, "/api/v1/admin/discovery", e.reader, `{"instance":"eu"}`, nil); resp.StatusCode != 403 {
		t.Errorf("without the admin scope: got %d, want 403", resp.StatusCode)
	}
	var p map[string]any
	if resp := e.do(http.MethodPost, "/api/v1/admin/discovery", e.admin, `{"instance":"mars"}`, &p); resp.StatusCode != 404 {
		t.Errorf("unknown instance: got %d %v, want 404", resp.StatusCode, p)
	}
	var started struct {
		Runs []events.DiscoveryRunStart `json:"runs"`
	}
	resp := e.do(http.MethodPost, "/api/v1/admin/discovery", e.admin, `{"instance":"eu"}`, &started)
	if resp.StatusCode != 202 || len(started.Runs) != 1 || started.Runs[0].Status != events.RunStarted || started.Runs[0].RunID <= first {
		t.Fatalf("start: got %d %+v", resp.StatusCode, started)
	}
	testenv.Eventually(t, "the requested run to succeed", func() bool {
		e.do(http.MethodGet, "/api/v1/status", e.reader, "", &st)
		r := st.Instances[0].LastDiscovery
		return r.ID == started.Runs[0].RunID && r.Outcome == "success" && r.Trigger == "api"
	})
}
