package devices_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
)

// control is the control API of one of the env's tenants.
func (e *env) control(tenant string) *nxsim.ControlClient {
	return nxsim.NewControlClient(e.sim.TenantURL(tenant), nil)
}

// sample draws fleet devices of a tenant, reproducibly.
func (e *env) sample(tenant string, s nxsim.Sample) []nxsim.SampledDevice {
	e.t.Helper()
	devs, err := e.control(tenant).SampleDevices(context.Background(), s)
	if err != nil {
		e.t.Fatal(err)
	}
	return devs
}

// queries counts the calls of a saved query a tenant received.
func (e *env) queries(tenant, id string) int64 {
	e.t.Helper()
	c, err := e.control(tenant).Counters(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Queries[id]
}

type peopleAnswer struct {
	Devices   []events.Device `json:"devices"`
	People    []events.Person `json:"people"`
	Ambiguous bool            `json:"ambiguous"`
	Source    string          `json:"source"`
	DataAsOf  *time.Time      `json:"data_as_of"`
}

// identifyQ identifies with a whole query string and checks every device's presence
// against its last_seen.
func (e *env) identifyQ(q url.Values) (int, peopleAnswer) {
	e.t.Helper()
	var a peopleAnswer
	resp := e.do(http.MethodGet, "/api/v1/devices?"+q.Encode(), e.reader, "", &a)
	checkPresence(e.t, time.Now(), a.Devices...)
	for _, p := range a.People {
		checkPresence(e.t, time.Now(), p.Devices...)
	}
	return resp.StatusCode, a
}

// checkPresence: a device's presence is what its last_seen says at now (devices
// within a minute of the hour's edge are left alone: the answer was made a moment ago).
func checkPresence(t *testing.T, now time.Time, devs ...events.Device) {
	t.Helper()
	for _, d := range devs {
		if d.LastSeen != nil && (now.Sub(*d.LastSeen)-time.Hour).Abs() < time.Minute {
			continue
		}
		if want := events.PresenceAt(d.LastSeen, now, time.Hour); d.Presence != want {
			t.Errorf("%s/%s last seen %v: got presence %q, want %q", d.Instance, d.Name, d.LastSeen, d.Presence, want)
		}
	}
}

// lookAlikes pairs the online devices of us and eu whose users have the same user
// name (and so UPN and e-mail address) but are different people, in the order of a
// seeded draw.
func (e *env) lookAlikes(seed uint64) [][2]nxsim.SampledDevice {
	e.t.Helper()
	eu := map[string]nxsim.SampledDevice{}
	for _, d := range e.sample("eu", nxsim.Sample{N: 1000, Seed: seed, Presence: "online"}) {
		eu[d.User] = d
	}
	var out [][2]nxsim.SampledDevice
	for _, u := range e.sample("us", nxsim.Sample{N: 1000, Seed: seed, Presence: "online"}) {
		if d, ok := eu[u.User]; ok {
			if d.UserUPN != u.UserUPN || d.UserSID == u.UserSID {
				e.t.Fatalf("nxsim's look-alikes: eu %+v and us %+v, want the same UPN and different SIDs", d, u)
			}
			out = append(out, [2]nxsim.SampledDevice{d, u})
		}
	}
	return out
}

func devicesOf(p events.Person) []string {
	out := make([]string, len(p.Devices))
	for k, d := range p.Devices {
		out[k] = d.Name
	}
	return out
}

// TestPeopleAcrossTenants: tenants eu and us have different people with the same
// user name and UPN. Identification groups their devices per person with the full
// name, says the answer is ambiguous, and instance= narrows it to one person.
func TestPeopleAcrossTenants(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	pairs := e.lookAlikes(41)
	if len(pairs) == 0 {
		t.Fatal("no look-alike users online in both tenants: nxsim's fleets changed")
	}
	// Prefer people whose full names differ (Tina and Tomas Meier), as a bot would ask.
	pair := pairs[0]
	for _, p := range pairs {
		if p[0].UserFullName != p[1].UserFullName {
			pair = p
			break
		}
	}
	euDev, usDev := pair[0], pair[1]
	t.Logf("look-alike %s: %q on eu (%s), %q on us (%s)", euDev.User, euDev.UserFullName, euDev.Name, usDev.UserFullName, usDev.Name)

	for _, q := range []url.Values{{"username": {euDev.User}}, {"upn": {euDev.UserUPN}}, {"username": {euDev.UserUPN}}} {
		code, a := e.identifyQ(q)
		if code != 200 || !a.Ambiguous || a.Source != events.SourceCache || len(a.People) != 2 {
			t.Fatalf("%v: got %d, ambiguous %v, %d people, want 200, ambiguous, eu's and us's person", q, code, a.Ambiguous, len(a.People))
		}
		byInstance := map[string]events.Person{}
		total := 0
		for _, p := range a.People {
			byInstance[p.Instance] = p
			total += len(p.Devices)
			for _, d := range p.Devices {
				if d.Instance != p.Instance || d.User != p.User || d.UserFullName != p.FullName {
					t.Errorf("%v: person %s/%s holds %+v", q, p.Instance, p.User, d)
				}
			}
		}
		for _, want := range []nxsim.SampledDevice{euDev, usDev} {
			in := "eu"
			if want == usDev {
				in = "us"
			}
			p := byInstance[in]
			if p.User != want.User || p.FullName != want.UserFullName || p.UPN != want.UserUPN || !slices.Contains(devicesOf(p), want.Name) {
				t.Errorf("%v: %s's person: got %+v, want %s (%s) with %s", q, in, p, want.User, want.UserFullName, want.Name)
			}
		}
		if total != len(a.Devices) {
			t.Errorf("%v: %d devices at the top level, %d in people; want the same", q, len(a.Devices), total)
		}
		if q.Has("username") && q.Get("username") == euDev.UserUPN && a.People[0].MatchedBy != events.KeyUPN {
			t.Errorf("user@domain as a user name: matched by %q, want upn", a.People[0].MatchedBy)
		}
	}

	// instance= narrows to one person, whose devices are all that instance's.
	for _, in := range []string{"eu", "us"} {
		code, a := e.identifyQ(url.Values{"username": {euDev.User}, "instance": {in}})
		if code != 200 || a.Ambiguous || len(a.People) != 1 || a.People[0].Instance != in || len(a.Devices) != len(a.People[0].Devices) {
			t.Fatalf("instance=%s: got %d %+v, want one person on %s", in, code, a, in)
		}
		for _, d := range a.Devices {
			if d.Instance != in {
				t.Errorf("instance=%s: got a device of %s", in, d.Instance)
			}
		}
	}
	// The device of a look-alike names its user's full name too.
	var dev deviceAnswer
	if resp := e.do(http.MethodGet, "/api/v1/devices/"+usDev.Name+"?instance=us", e.reader, "", &dev); resp.StatusCode != 200 ||
		len(dev.Device.Users) == 0 || dev.Device.Users[0].FullName == "" || dev.Device.UserFullName != dev.Device.Users[0].FullName {
		t.Errorf("device %s: got %d %+v, want its users with their full names", usDev.Name, resp.StatusCode, dev.Device)
	}
}

// TestUserNameForms: DOMAIN\user finds the user by their name alone, user@domain by
// the UPN, and matched_by says so; malformed forms and instances are refused naming
// the parameter.
func TestUserNameForms(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	usUsers := map[string]bool{}
	for _, d := range e.sample("us", nxsim.Sample{N: 1000, Seed: 1}) {
		usUsers[d.User] = true
	}
	var picked []nxsim.SampledDevice
	platforms := map[string]bool{}
	for _, d := range e.sample("eu", nxsim.Sample{N: 100, Seed: 17, Presence: "online"}) {
		if !usUsers[d.User] && !platforms[d.Platform] {
			platforms[d.Platform] = true
			picked = append(picked, d) // one eu-only user per platform
		}
	}
	if len(picked) != 2 {
		t.Fatalf("picked %v, want a Windows and a macOS user of eu only", picked)
	}
	for _, d := range picked {
		for _, tt := range []struct{ value, matchedBy string }{
			{d.User, events.KeyUsername},
			{`CORP\` + d.User, events.MatchedByUsernameWithoutDomain},
			{d.UserUPN, events.KeyUPN},
		} {
			code, a := e.identifyQ(url.Values{"username": {tt.value}})
			if code != 200 || a.Ambiguous || len(a.People) != 1 || a.People[0].User != d.User || a.People[0].MatchedBy != tt.matchedBy ||
				a.People[0].FullName != d.UserFullName || !slices.Contains(devicesOf(a.People[0]), d.Name) {
				t.Errorf("username=%s: got %d %+v, want %s (%s) matched by %s", tt.value, code, a, d.User, d.Name, tt.matchedBy)
				continue
			}
			for _, dev := range a.Devices {
				if dev.MatchedBy != tt.matchedBy {
					t.Errorf("username=%s: device %s matched by %q, want %q", tt.value, dev.Name, dev.MatchedBy, tt.matchedBy)
				}
			}
		}
	}
	tests := []struct{ query, field string }{
		{"username=" + url.QueryEscape(`CORP\`), "username"},
		{"username=" + url.QueryEscape(`\jdoe`), "username"},
		{"username=" + url.QueryEscape(`A\B\jdoe`), "username"},
		{"username=" + url.QueryEscape(`CORP\jdoe@example.com`), "username"},
		{"username=" + url.QueryEscape("jdoe@"), "username"},
		{"username=" + url.QueryEscape("jdoe@exa mple.com"), "username"},
		{"username=jdoe&instance=mars", "instance"},
		{"username=jdoe&instance=EU", "instance"},
		{"username=jdoe&instance=", "instance"},
		{"username=jdoe&instance=eu&instance=us", "instance"},
		{"instance=eu", "username"},
	}
	for _, tt := range tests {
		var p map[string]any
		resp := e.do(http.MethodGet, "/api/v1/devices?"+tt.query, e.reader, "", &p)
		if resp.StatusCode != 400 || p["code"] != "invalid_request" || p["field"] != tt.field {
			t.Errorf("%s: got %d %v, want 400 naming %s", tt.query, resp.StatusCode, p, tt.field)
		}
	}
	for _, path := range []string{"/api/v1/devices/" + picked[0].Name + "?instance=mars", "/api/v1/devices/" + picked[0].Name + "?instance=E*",
		"/api/v1/devices/" + picked[0].Name + "?site=eu"} {
		var p map[string]any
		want := "instance"
		if path[len(path)-7:] == "site=eu" {
			want = "site"
		}
		if resp := e.do(http.MethodGet, path, e.reader, "", &p); resp.StatusCode != 400 || p["field"] != want {
			t.Errorf("%s: got %d %v, want 400 naming %s", path, resp.StatusCode, p, want)
		}
	}
}

// TestUnknownIdentifiersGoLiveOnce: an identifier no instance knows is asked live
// once; asked again within cache.unknown_identifier_ttl, the answer is the
// remembered one, dated when the instances said so, and no query reaches them.
func TestUnknownIdentifiersGoLiveOnce(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	tests := []struct {
		key, value, query string
		perTenant         int64 // queries per tenant the first time
	}{
		{events.KeyUsername, `CORP\nobody417`, "#get_device_basic_infos", 2}, // as given, then without the domain
		{events.KeyUsername, "nobody417@example.com", "#get_device_basic_infos_by_upn", 1},
		{events.KeyUPN, "nobody418@example.com", "#get_device_basic_infos_by_upn", 1},
		{events.KeyDeviceName, "NO-SUCH-PC-417", "#get_device_basic_infos_by_device_name", 1},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			before := map[string]int64{"eu": e.queries("eu", tt.query), "us": e.queries("us", tt.query)}
			code, first := e.identifyQ(url.Values{tt.key: {tt.value}})
			if code != 200 || first.Source != events.SourceLive || len(first.Devices) != 0 || first.DataAsOf == nil {
				t.Fatalf("first: got %d %+v, want 200, live, no device", code, first)
			}
			for _, in := range []string{"eu", "us"} {
				if got := e.queries(in, tt.query) - before[in]; got != tt.perTenant {
					t.Errorf("first: %s got %d queries %s, want %d", in, got, tt.query, tt.perTenant)
				}
			}
			code, again := e.identifyQ(url.Values{tt.key: {tt.value}})
			if code != 200 || again.Source != events.SourceLive || len(again.Devices) != 0 || again.DataAsOf == nil || !again.DataAsOf.Equal(*first.DataAsOf) {
				t.Errorf("again: got %d %+v, want the remembered answer of %v", code, again, first.DataAsOf)
			}
			for _, in := range []string{"eu", "us"} {
				if got := e.queries(in, tt.query) - before[in]; got != tt.perTenant {
					t.Errorf("again: %s got %d queries %s in all, want still %d", in, got, tt.query, tt.perTenant)
				}
			}
		})
	}
	// A device unknown to the cache and the tenants is 404 on GET /devices/{device},
	// with the same memory.
	before := e.queries("eu", "#get_device_basic_infos_by_device_name")
	for range 2 {
		var p map[string]any
		if resp := e.do(http.MethodGet, "/api/v1/devices/NO-SUCH-PC-418", e.reader, "", &p); resp.StatusCode != 404 {
			t.Errorf("unknown device: got %d %v, want 404", resp.StatusCode, p)
		}
	}
	if got := e.queries("eu", "#get_device_basic_infos_by_device_name") - before; got != 1 {
		t.Errorf("unknown device twice: eu asked %d times, want once", got)
	}
}

var rfc3339UTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

// TestLongUnseenDevices: a device last seen more than USER_ACTIVITY_PERIOD ago is not
// in the cache, yet identification and GET /devices/{device} find it live, offline,
// with its last_seen in RFC 3339 UTC; one seen a week or more ago is in the cache.
func TestLongUnseenDevices(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	var gone, stale []nxsim.SampledDevice
	for _, d := range e.sample("eu", nxsim.Sample{N: 200, Seed: 23, Presence: "long_unseen"}) {
		if time.Since(d.LastSeen) > 31*24*time.Hour {
			gone = append(gone, d)
		} else if time.Since(d.LastSeen) < 29*24*time.Hour {
			stale = append(stale, d)
		}
	}
	if len(gone) == 0 || len(stale) == 0 {
		t.Fatalf("long unseen: %d past the period, %d within it; want both", len(gone), len(stale))
	}
	for _, tt := range []struct {
		d      nxsim.SampledDevice
		source string
	}{{gone[0], events.SourceLive}, {stale[0], events.SourceCache}} {
		code, a := e.identifyQ(url.Values{"device_name": {tt.d.Name}})
		if code != 200 || a.Source != tt.source || len(a.Devices) != 1 {
			t.Fatalf("%s (last seen %v): got %d %+v, want it from %s", tt.d.Name, tt.d.LastSeen, code, a, tt.source)
		}
		// nxsim's fleet keeps each device's age, so its last_seen moves on with the
		// clock: the cache's is the one discovery read a moment ago.
		got := a.Devices[0]
		if got.Presence != events.PresenceOffline || got.LastSeen == nil || got.LastSeen.Sub(tt.d.LastSeen).Abs() > time.Minute ||
			got.CollectorUID != tt.d.CollectorUID || got.Platform != tt.d.Platform {
			t.Errorf("%s: got %+v, want it offline, last seen %v", tt.d.Name, got, tt.d.LastSeen)
		}
		var raw struct {
			Device map[string]any `json:"device"`
			Source string         `json:"source"`
		}
		resp := e.do(http.MethodGet, "/api/v1/devices/"+url.PathEscape(tt.d.Name), e.reader, "", &raw)
		if s, _ := raw.Device["last_seen"].(string); resp.StatusCode != 200 || raw.Source != tt.source || !rfc3339UTC.MatchString(s) ||
			raw.Device["presence"] != events.PresenceOffline {
			t.Errorf("GET /devices/%s: got %d %v, want it from %s, offline, last_seen in RFC 3339 UTC", tt.d.Name, resp.StatusCode, raw, tt.source)
		}
	}
}

// TestLiveUserLookupsCoverThePeriod: with nothing cached, a user whose only activity
// is weeks old (within USER_ACTIVITY_PERIOD) is found live, and the answer's times
// are RFC 3339 UTC.
func TestLiveUserLookupsCoverThePeriod(t *testing.T) {
	e := newEnv(t, envOptions{tenants: []string{"eu"}, noWorker: true})
	var weeks *nxsim.SampledDevice
	for _, d := range e.sample("eu", nxsim.Sample{N: 200, Seed: 29, Presence: "long_unseen"}) {
		if age := time.Since(d.LastSeen); age > 8*24*time.Hour && age < 25*24*time.Hour {
			weeks = &d
			break
		}
	}
	if weeks == nil {
		t.Fatal("no device last seen 8 to 25 days ago")
	}
	var raw struct {
		Devices []map[string]any `json:"devices"`
		Source  string           `json:"source"`
	}
	resp := e.do(http.MethodGet, "/api/v1/devices?"+url.Values{"upn": {weeks.UserUPN}}.Encode(), e.reader, "", &raw)
	found := false
	for _, d := range raw.Devices {
		if d["name"] == weeks.Name {
			found = true
		}
		for _, k := range []string{"last_seen", "last_activity"} {
			if s, ok := d[k].(string); ok && !rfc3339UTC.MatchString(s) {
				t.Errorf("%s %s: got %q, want RFC 3339 UTC", d["name"], k, s)
			}
		}
	}
	if resp.StatusCode != 200 || raw.Source != events.SourceLive || !found {
		t.Errorf("%s, last active on %s %v ago: got %d %+v, want it found live", weeks.UserUPN, weeks.Name, time.Since(weeks.LastSeen), resp.StatusCode, raw)
	}
}
