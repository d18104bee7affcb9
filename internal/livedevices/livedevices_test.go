package livedevices

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestLiveQueriesAreSaved: every query identification falls back to is in
// config/queries.yaml (which operators save in the tenant and nxsim loads), compiles,
// takes the parameter identification passes and lists what a device answer needs.
func TestLiveQueriesAreSaved(t *testing.T) {
	saved := testenv.SavedQueries(t)
	for _, key := range events.IdentifierKeys() {
		id, ok := queries[key]
		if !ok {
			t.Errorf("%s: no live query", key)
			continue
		}
		text, ok := saved[id.id]
		if !ok {
			t.Errorf("%s: query %s is not in config/queries.yaml", key, id.id)
			continue
		}
		p, err := nql.Compile(text, nil)
		if err != nil {
			t.Errorf("%s: %v", id.id, err)
			continue
		}
		a := p.Analysis()
		if !slices.Equal(a.Parameters, []string{id.param}) {
			t.Errorf("%s: parameters %v, want [%s]", id.id, a.Parameters, id.param)
		}
		for _, h := range []string{"device.collector.uid", "device.name", "device.last_seen"} {
			if !slices.Contains(a.Headers, h) {
				t.Errorf("%s: lists %v, want %s among them", id.id, a.Headers, h)
			}
		}
	}
}

func TestLiveDevice(t *testing.T) {
	row := map[string]any{"device.collector.uid": "CF05120D-508A-4B9F-A596-6C3865D118A1", "device.name": "PC-1",
		"device.operating_system.platform": "Windows", "device.last_seen": "2026-01-02 03:04:05", "last_activity": nil}
	d, ok := liveDevice(row, "eu", events.KeyUPN)
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !ok || d.CollectorUID != "cf05120d-508a-4b9f-a596-6c3865d118a1" || d.Instance != "eu" || d.MatchedBy != events.KeyUPN ||
		d.LastSeen == nil || !d.LastSeen.Equal(want) || d.LastActivity != nil || d.ActivitySource != "" {
		t.Errorf("got %+v, %v", d, ok)
	}
	if _, ok := liveDevice(map[string]any{"device.name": "PC-1"}, "eu", events.KeyUPN); ok {
		t.Error("a row without a collector UID: got a device")
	}
	a, b := want, want.Add(time.Hour)
	devs := []events.Device{{Name: "none"}, {Name: "old", LastActivity: &a}, {Name: "new", LastActivity: &b}}
	slices.SortStableFunc(devs, func(x, y events.Device) int { return cmpTimeDesc(x.LastActivity, y.LastActivity) })
	if got := []string{devs[0].Name, devs[1].Name, devs[2].Name}; !slices.Equal(got, []string{"new", "old", "none"}) {
		t.Errorf("order: got %v, want most recent first, unknown last", got)
	}
}

func TestParseTimeIsUTC(t *testing.T) {
	want := time.Date(2026, 11, 30, 19, 58, 58, 0, time.UTC)
	zurich, _ := time.LoadLocation("Europe/Zurich")
	for _, v := range []any{
		"2026-11-30 19:58:58", // the NQL API's form (UTC: the client asks for UTC times)
		"2026-11-30T19:58:58",
		"2026-11-30T19:58:58Z",
		"2026-11-30T20:58:58+01:00",
		" 2026-11-30 19:58:58.000 ",
		want.In(zurich),
	} {
		got, ok := parseTime(v)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%#v: got %v %v, want %v in UTC", v, got, ok, want)
		}
	}
	for _, v := range []any{nil, "", "yesterday", 17, "2026-11-30", time.Time{}} {
		if got, ok := parseTime(v); ok {
			t.Errorf("%#v: got %v, want no time", v, got)
		}
	}
}

// fakeLive answers saved queries from rows per query id and parameter value, and
// counts the calls.
type fakeLive struct {
	mu    sync.Mutex
	rows  map[string][]map[string]any // "query id=value"
	err   error
	calls []string
}

func (f *fakeLive) Execute(_ context.Context, id string, params map[string]string) (*nexthink.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var call string
	for _, v := range params {
		call = id + "=" + v
	}
	f.calls = append(f.calls, call)
	if f.err != nil {
		return nil, f.err
	}
	return &nexthink.Result{QueryID: id, Rows: f.rows[call]}, nil
}

type fakeHealth []store.InstanceHealth

func (h fakeHealth) InstancesHealth(context.Context) ([]store.InstanceHealth, error) { return h, nil }

// fakeMemory is the shared memory of unknown identifiers, in a map.
type fakeMemory struct {
	mu    sync.Mutex
	known map[string]map[string]time.Time // key=value -> instance -> when
}

func (m *fakeMemory) UnknownOn(_ context.Context, key, value string) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.known[key+"="+strings.ToLower(value)]), nil
}

func (m *fakeMemory) RememberUnknown(_ context.Context, key, value string, instances []string, at time.Time, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known == nil {
		m.known = map[string]map[string]time.Time{}
	}
	k := key + "=" + strings.ToLower(value)
	if m.known[k] == nil {
		m.known[k] = map[string]time.Time{}
	}
	for _, in := range instances {
		m.known[k][in] = at
	}
	return nil
}

func row(uid, name string, lastSeen, lastActivity time.Time) map[string]any {
	return map[string]any{"device.collector.uid": uid, "device.name": name, "device.last_seen": lastSeen.UTC().Format("2006-01-02 15:04:05"),
		"last_activity": lastActivity.UTC().Format("2006-01-02 15:04:05")}
}

func TestLookup(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	recent, old := now.Add(-2*time.Hour), now.Add(-20*24*time.Hour)
	eu := &fakeLive{rows: map[string][]map[string]any{
		"#get_device_basic_infos=jdoe":                      {row("00000000-0000-4000-8000-000000000001", "EU-1", recent, recent)},
		"#get_device_basic_infos_by_upn=tmeier@example.com": {row("00000000-0000-4000-8000-000000000002", "EU-2", old, old)},
	}}
	us := &fakeLive{rows: map[string][]map[string]any{
		"#get_device_basic_infos_by_upn=tmeier@example.com": {row("00000000-0000-4000-8000-000000000003", "US-3", recent, recent)},
	}}
	mem := &fakeMemory{}
	f := New(fakeHealth{{Name: "eu", Up: true}, {Name: "us", Up: true}}, []Instance{{"eu", eu}, {"us", us}},
		RememberUnknown(mem, time.Minute))

	// DOMAIN\user: the name as given, then the name alone, on each instance.
	a, err := f.Lookup(context.Background(), Query{Key: events.KeyUsername, Value: `CORP\jdoe`})
	if err != nil || !a.Asked || len(a.Devices) != 1 || a.Devices[0].Name != "EU-1" ||
		a.Devices[0].MatchedBy != events.MatchedByUsernameWithoutDomain || a.Devices[0].User != "jdoe" || a.AsOf.Before(now) {
		t.Fatalf(`CORP\jdoe: got %+v, %v`, a, err)
	}
	if want := []string{`#get_device_basic_infos=CORP\jdoe`, "#get_device_basic_infos=jdoe"}; !slices.Equal(eu.calls, want) {
		t.Errorf("eu asked %v, want %v", eu.calls, want)
	}
	// us did not know it: asked again within the memory's time, it is not asked.
	us.calls = nil
	if _, err := f.Lookup(context.Background(), Query{Key: events.KeyUsername, Value: `corp\JDOE`}); err != nil || len(us.calls) != 0 {
		t.Errorf("us asked again %v (%v), want not within the memory's time", us.calls, err)
	}

	// user@domain: the name, then the UPN; both instances know that UPN.
	a, _ = f.Lookup(context.Background(), Query{Key: events.KeyUsername, Value: "tmeier@example.com"})
	if got := names(a.Devices); !slices.Equal(got, []string{"us/US-3", "eu/EU-2"}) || a.Devices[0].MatchedBy != events.KeyUPN {
		t.Errorf("tmeier@example.com: got %v %+v, want both instances' devices, most recent first, matched by upn", got, a.Devices)
	}
	// A period of a week leaves out eu's device, last active 20 days ago; instance=
	// asks one instance only.
	week := New(fakeHealth{}, []Instance{{"eu", eu}, {"us", us}}, Period(7*24*time.Hour))
	a, _ = week.Lookup(context.Background(), Query{Key: events.KeyUPN, Value: "tmeier@example.com"})
	if got := names(a.Devices); !slices.Equal(got, []string{"us/US-3"}) {
		t.Errorf("a week's period: got %v, want only us's recent device", got)
	}
	eu.calls = nil
	a, _ = week.Lookup(context.Background(), Query{Key: events.KeyUPN, Value: "tmeier@example.com", Instance: "us"})
	if got := names(a.Devices); !slices.Equal(got, []string{"us/US-3"}) || len(eu.calls) != 0 {
		t.Errorf("instance us: got %v, eu asked %v", got, eu.calls)
	}
	// A device by name is found however long ago it was seen.
	eu.rows["#get_device_basic_infos_by_device_name=EU-OLD"] = []map[string]any{row("00000000-0000-4000-8000-000000000004", "EU-OLD", now.Add(-90*24*time.Hour), now.Add(-90*24*time.Hour))}
	if devs, _, _ := week.Find(context.Background(), events.KeyDeviceName, "EU-OLD"); len(devs) != 1 {
		t.Errorf("a device last seen 90 days ago: got %v, want it", devs)
	}
	// Every instance remembered as not knowing it: nothing asked, the answer dated
	// from when they said so.
	eu.calls, us.calls = nil, nil
	first, _ := f.Lookup(context.Background(), Query{Key: events.KeySID, Value: "S-1-5-21-9-9-9-9"})
	again, _ := f.Lookup(context.Background(), Query{Key: events.KeySID, Value: "s-1-5-21-9-9-9-9"})
	if len(eu.calls)+len(us.calls) != 2 || !again.Asked || len(again.Devices) != 0 || !again.AsOf.Equal(first.AsOf) {
		t.Errorf("unknown twice: calls %v %v, answers %+v then %+v; want one call each, then the remembered answer", eu.calls, us.calls, first, again)
	}
	// An instance that fails is left out, and not remembered as not knowing.
	us.err = errors.New("tenant down")
	eu.calls = nil
	if a, err := f.Lookup(context.Background(), Query{Key: events.KeyUsername, Value: "nobody"}); err != nil || len(a.Devices) != 0 {
		t.Errorf("one instance failing: got %+v %v", a, err)
	}
	if _, remembered := mem.known["username=nobody"]["us"]; remembered {
		t.Error("a failed instance was remembered as not knowing the identifier")
	}
	eu.err = errors.New("tenant down")
	if _, err := f.Lookup(context.Background(), Query{Key: events.KeyUsername, Value: "nobody2"}); err == nil {
		t.Error("every instance failing: got no error")
	}
}

func names(ds []events.Device) []string {
	out := make([]string, len(ds))
	for k, d := range ds {
		out[k] = d.Instance + "/" + d.Name
	}
	return out
}
