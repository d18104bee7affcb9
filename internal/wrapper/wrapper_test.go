package wrapper

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// fakeLive is an instance that records the queries it is asked.
type fakeLive struct {
	name string
	mu   sync.Mutex
	got  []string
	err  error
	// rows, when set, is the answer of Execute; export is the results file of
	// ExportStream (header first), partial its 206.
	rows    []map[string]any
	export  [][]string
	partial bool
}

func (f *fakeLive) Execute(_ context.Context, id string, params map[string]string) (*nexthink.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, id)
	if f.err != nil {
		return nil, f.err
	}
	if f.rows != nil {
		return &nexthink.Result{QueryID: id, Executed: liveAt, Rows: f.rows}, nil
	}
	return &nexthink.Result{QueryID: id, Executed: liveAt, Rows: []map[string]any{{"device.name": params["device_name"], "from": f.name}}}, nil
}

func (f *fakeLive) ExportStream(ctx context.Context, id string, _ map[string]string, ready func(bool) error, fn func(header, record []string) error) error {
	f.mu.Lock()
	f.got = append(f.got, "export "+id)
	f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if err := ready(f.partial); err != nil {
		return err
	}
	for _, rec := range f.export[1:] {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(f.export[0], slices.Clone(rec)); err != nil {
			return err
		}
	}
	if f.partial {
		return &nexthink.Error{Instance: f.name, Code: nexthink.CodePartial, Err: nexthink.ErrPartial}
	}
	return nil
}

func (f *fakeLive) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// fakeResolver knows devices by name.
type fakeResolver map[string]Device

func (r fakeResolver) Resolve(_ context.Context, name string) (Device, error) {
	if d, ok := r[strings.ToUpper(name)]; ok {
		return d, nil
	}
	return Device{}, problem.New(problem.NotFound, "no device %q", name)
}

var (
	now    = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	liveAt = time.Date(2026, 5, 4, 11, 59, 58, 0, time.UTC)
)

// cachedFields are a device's cached fields as they come out of the cache's JSON:
// numbers as float64, times as text.
func cachedFields() map[string]any {
	return map[string]any{
		"device.collector.uid": "cf05120d-508a-4b9f-a596-6c3865d118a1", "device.uid": "u-1", "device.name": "PC-HEALTHY",
		"device.operating_system.platform": "Windows", "device.operating_system.name": "Windows 11 Pro 23H2",
		"device.operating_system.version": "10.0.22631", "device.hardware.type": "laptop",
		"device.hardware.manufacturer": "Dell Inc.", "device.hardware.model": "Latitude 7440",
		"device.last_seen": "2026-05-04T11:55:00Z", "device.login.last_login_user_name": "bwayne",
		"device.login.last_login_time":          "2026-05-04T08:00:00Z",
		"device.boot.days_since_last_full_boot": 2.0, "device.hardware.memory": 17179869184.0,
	}
}

// library compiles the saved queries of the tests.
func library(t *testing.T) map[string]*topic.SavedQuery {
	t.Helper()
	lib := map[string]*topic.SavedQuery{}
	for id, text := range map[string]string{
		"#checklist": `devices
| where device.name == $device_name
| list collector.uid, device.name, last_seen, hardware.memory, boot.days_since_last_full_boot`,
		"#checklist_by_uid": `devices during past 7d
| where collector.uid == $uid
| list device.name, last_seen`,
		"#outlook": `devices
| where device.name == $device_name
| list device.name, remote_action.get_outlook_online_windows.execution.outputs.IsOnline`,
		"#packages": `devices
| where device.name == $device_name
| include package.installed_packages
| compute n = package.name.count()
| list device.name, n`,
		"#all_windows": `devices | where operating_system.platform == "Windows" | list device.name`,
		"#sessions":    `devices | include session.events past 7d | compute last_activity = end_time.max() | list device.name, last_seen, last_activity, hardware.memory`,
		"#first_1000":  `devices | list device.name | limit 1000`,
		"#dynamic": `devices
| where device.name == $device_name and device.score.device_health < 8
| list device.name, device.#department, device.score.device_health`,
	} {
		plan, err := nql.Compile(text, nil)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		lib[id] = &topic.SavedQuery{ID: id, Plan: plan, Analysis: plan.Analysis()}
	}
	return lib
}

type env struct {
	w      *Wrapper
	lib    map[string]*topic.SavedQuery
	eu, us *fakeLive
}

func newEnv(t *testing.T, devices fakeResolver, instances ...string) *env {
	t.Helper()
	e := &env{lib: library(t), eu: &fakeLive{name: "eu"}, us: &fakeLive{name: "us"}}
	if len(instances) == 0 {
		instances = []string{"eu", "us"}
	}
	var ins []Instance
	for _, n := range instances {
		l := map[string]*fakeLive{"eu": e.eu, "us": e.us}[n]
		ins = append(ins, Instance{Name: n, Live: l})
	}
	var err error
	e.w, err = New(Options{Instances: ins, Resolver: devices, MaxAge: 2 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) query(t *testing.T, id string) *topic.SavedQuery {
	t.Helper()
	q, ok := e.lib[id]
	if !ok {
		t.Fatalf("no query %s", id)
	}
	return q
}

func healthy(mod func(*Device)) fakeResolver {
	d := Device{Name: "PC-HEALTHY", CollectorUID: "cf05120d-508a-4b9f-a596-6c3865d118a1", UID: "u-1", Instance: "eu",
		Platform: "Windows", Fields: cachedFields(), CachedAt: now.Add(-30 * time.Minute)}
	if mod != nil {
		mod(&d)
	}
	return fakeResolver{"PC-HEALTHY": d, "CF05120D-508A-4B9F-A596-6C3865D118A1": d}
}

func TestCacheAnswersAFreshDeviceOnlyQuery(t *testing.T) {
	e := newEnv(t, healthy(nil))
	a, err := e.w.Run(context.Background(), e.query(t, "#checklist"), Request{Parameters: map[string]string{"device_name": "pc-healthy"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Source != "cache" || a.Instance != "eu" || !a.DataAsOf.Equal(now.Add(-30*time.Minute)) || a.Why != "" {
		t.Errorf("got source %s instance %s as of %s (why %q), want cache, eu, %s", a.Source, a.Instance, a.DataAsOf, a.Why, now.Add(-30*time.Minute))
	}
	want := []map[string]any{{
		"device.collector.uid": "cf05120d-508a-4b9f-a596-6c3865d118a1", "device.name": "PC-HEALTHY",
		"device.last_seen": "2026-05-04T11:55:00Z", "device.hardware.memory": int64(17179869184),
		"device.boot.days_since_last_full_boot": int64(2),
	}}
	if !reflect.DeepEqual(a.Rows, want) {
		t.Errorf("rows: got %#v, want %#v", a.Rows, want)
	}
	if got := e.eu.calls() + e.us.calls(); got != 0 {
		t.Errorf("live calls: got %d, want 0", got)
	}
}

func TestWhenTheQueryGoesLive(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		params   map[string]string
		devices  fakeResolver
		req      Request
		instance string // where it must go
		why      string // a part of the reason
	}{
		{name: "stale cache", query: "#checklist", devices: healthy(func(d *Device) { d.CachedAt = now.Add(-3 * time.Hour) }),
			instance: "eu", why: "more than 2h0m0s"},
		{name: "a field the cache lacks", query: "#checklist", devices: healthy(func(d *Device) { delete(d.Fields, "device.hardware.memory") }),
			instance: "eu", why: "does not hold device.hardware.memory"},
		{name: "device found live", query: "#checklist", devices: healthy(func(d *Device) { d.Fields, d.CachedAt, d.Instance = nil, time.Time{}, "us" }),
			instance: "us", why: "not in the cache"},
		{name: "remote-action outputs", query: "#outlook", devices: healthy(nil), instance: "eu", why: "remote-action outputs"},
		{name: "packages", query: "#packages", devices: healthy(nil), instance: "eu", why: "packages or events"},
		{name: "refresh", query: "#checklist", devices: healthy(nil), req: Request{Live: true}, instance: "eu", why: "refresh"},
		{name: "another instance named", query: "#checklist", devices: healthy(nil), req: Request{Instance: "us"}, instance: "us", why: "asked of instance us"},
		{name: "no device selected, instance named", query: "#all_windows", params: map[string]string{}, devices: healthy(nil),
			req: Request{Instance: "us"}, instance: "us", why: "selects no single device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.devices)
			req := tt.req
			req.Parameters = tt.params
			if req.Parameters == nil {
				req.Parameters = map[string]string{"device_name": "PC-HEALTHY"}
			}
			a, err := e.w.Run(context.Background(), e.query(t, tt.query), req)
			if err != nil {
				t.Fatal(err)
			}
			if a.Source != "live" || a.Instance != tt.instance || !a.DataAsOf.Equal(liveAt) || !strings.Contains(a.Why, tt.why) {
				t.Errorf("got source %s instance %s as of %s why %q, want live from %s as of %s, why with %q", a.Source, a.Instance, a.DataAsOf, a.Why, tt.instance, liveAt, tt.why)
			}
			calls := map[string]int{"eu": e.eu.calls(), "us": e.us.calls()}
			if calls[tt.instance] != 1 || calls["eu"]+calls["us"] != 1 {
				t.Errorf("live calls: got %v, want one to %s", calls, tt.instance)
			}
		})
	}
}

func TestCachedTimeframeFiltersAsLiveWould(t *testing.T) {
	// devices during past 7d: a device last seen 10 days ago is not in the answer.
	e := newEnv(t, healthy(func(d *Device) { d.Fields["device.last_seen"] = now.Add(-240 * time.Hour).Format(time.RFC3339) }))
	q := e.query(t, "#checklist_by_uid")
	a, err := e.w.Run(context.Background(), q, Request{Parameters: map[string]string{"uid": "cf05120d-508a-4b9f-a596-6c3865d118a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Source != "cache" || len(a.Rows) != 0 {
		t.Errorf("got %s with %d rows, want cache with none", a.Source, len(a.Rows))
	}
}

func TestRefusals(t *testing.T) {
	transport := &nexthink.Error{Instance: "eu", Call: "nql.execute", Target: "#outlook", Code: nexthink.CodeTransport, Err: errors.New("connection refused")}
	tests := []struct {
		name      string
		query     string
		params    map[string]string
		req       Request
		instances []string
		liveErr   error
		code      problem.Code
		field     string
		detail    string
		retry     bool
	}{
		{name: "missing parameter", query: "#checklist", params: map[string]string{}, code: problem.Invalid, field: "parameters.device_name", detail: "needs the parameter device_name"},
		{name: "unknown parameter", query: "#checklist", params: map[string]string{"device_name": "PC-HEALTHY", "x": "1"}, code: problem.Invalid, field: "parameters.x", detail: "it takes only device_name"},
		{name: "control characters", query: "#checklist", params: map[string]string{"device_name": "PC\n"}, code: problem.Invalid, field: "parameters.device_name"},
		{name: "unknown device", query: "#checklist", params: map[string]string{"device_name": "PC-NOPE"}, code: problem.NotFound, detail: "PC-NOPE"},
		{name: "no device selected, several instances", query: "#all_windows", params: map[string]string{}, code: problem.Invalid, field: "instance", detail: "eu, us"},
		{name: "unknown instance", query: "#all_windows", params: map[string]string{}, req: Request{Instance: "ap"}, code: problem.Invalid, field: "instance"},
		{name: "tenant unreachable", query: "#outlook", params: map[string]string{"device_name": "PC-HEALTHY"}, liveErr: transport,
			code: problem.UpstreamUnavailable, detail: "instance eu is unavailable", retry: true},
		{name: "tenant busy", query: "#outlook", params: map[string]string{"device_name": "PC-HEALTHY"},
			liveErr: &nexthink.Error{Instance: "eu", Call: "nql.execute", Code: nexthink.CodeRateLimited, RetryAfter: 3 * time.Second},
			code:    problem.RateLimited, detail: "busy", retry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, healthy(nil), tt.instances...)
			e.eu.err = tt.liveErr
			req := tt.req
			req.Parameters = tt.params
			_, err := e.w.Run(context.Background(), e.query(t, tt.query), req)
			p := problem.From(err)
			if p == nil || p.Code != tt.code || p.Field != tt.field || !strings.Contains(p.Detail, tt.detail) || (p.RetryAfter > 0) != tt.retry {
				t.Errorf("got %+v, want code %s field %q detail with %q retry %v", p, tt.code, tt.field, tt.detail, tt.retry)
			}
		})
	}
}

func TestOneInstanceNeedsNoName(t *testing.T) {
	e := newEnv(t, healthy(nil), "eu")
	a, err := e.w.Run(context.Background(), e.query(t, "#all_windows"), Request{Parameters: map[string]string{}})
	if err != nil || a.Instance != "eu" {
		t.Errorf("got %+v, %v, want an answer from eu", a, err)
	}
}

func TestTyped(t *testing.T) {
	at := time.Date(2026, 5, 4, 11, 55, 0, 0, time.UTC)
	tests := []struct {
		v    any
		typ  nql.FieldType
		want nql.Value
	}{
		{2.0, nql.TypeInt, int64(2)},
		{2.5, nql.TypeInt, 2.5},
		{"7", nql.TypeInt, int64(7)},
		{"2026-05-04T11:55:00Z", nql.TypeDateTime, at},
		{"2026-05-04 11:55:00", nql.TypeDateTime, at},
		{"not a time", nql.TypeDateTime, "not a time"},
		{"Windows", nql.TypeString, "Windows"},
		{1.5, nql.TypeFloat, 1.5},
	}
	for _, tt := range tests {
		if got := typed(tt.v, tt.typ); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("typed(%#v, %s): got %#v, want %#v", tt.v, tt.typ, got, tt.want)
		}
	}
}

// TestCacheAnswersWithDynamicFields: the tenant's dynamic fields discovery cached
// answer a device-only query like the configured ones, typed as the cache holds
// them; a device cached without them is asked live.
func TestCacheAnswersWithDynamicFields(t *testing.T) {
	e := newEnv(t, healthy(func(d *Device) {
		d.Fields["device.#department"], d.Fields["device.score.device_health"] = "Finance", 6.5
	}))
	a, err := e.w.Run(context.Background(), e.query(t, "#dynamic"), Request{Parameters: map[string]string{"device_name": "pc-healthy"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"device.name": "PC-HEALTHY", "device.#department": "Finance", "device.score.device_health": 6.5}}
	if a.Source != "cache" || !reflect.DeepEqual(a.Rows, want) {
		t.Errorf("got %s %#v, want the cache's %#v", a.Source, a.Rows, want)
	}
	e = newEnv(t, healthy(nil))
	a, err = e.w.Run(context.Background(), e.query(t, "#dynamic"), Request{Parameters: map[string]string{"device_name": "pc-healthy"}})
	if err != nil || a.Source != "live" || !strings.Contains(a.Why, "the cache does not hold device.") {
		t.Errorf("without the fields cached: got %s (%q) %v, want live naming the field", a.Source, a.Why, err)
	}
}
