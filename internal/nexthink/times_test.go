package nexthink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
)

// zonedTenants are tenants whose wall clocks differ from UTC, one by a fraction of
// an hour: a date-time read in the wrong zone would be off by hours.
func zonedTenants(c *nxsim.Config) {
	c.Tenants = []nxsim.TenantConfig{
		{Name: "eu", Size: 200, TimeZone: "Europe/Zurich"},
		{Name: "in", Size: 50, TimeZone: "Asia/Kolkata"},
		{Name: "us", Size: 50, TimeZone: "America/Los_Angeles"},
	}
}

// Rows of execute and records of export carry the schema's date-times as RFC 3339
// UTC, equal to nxsim's own last seen of fleet devices drawn at random, whatever
// the tenant's time zone; other values are left alone.
func TestTimesAreRFC3339UTCInEveryZone(t *testing.T) {
	t.Parallel()
	// nxsim's clock stands still: the last seen sampled and those the queries answer
	// are of one instant, however far apart (a second boundary between them) they are.
	now := time.Now()
	sim := startSim(t, func(c *nxsim.Config) {
		zonedTenants(c)
		c.Clock = func() time.Time { return now }
	})
	ctx := context.Background()
	for k, tenant := range []string{"eu", "in", "us"} {
		ctl := nxsim.NewControlClient(sim.TenantURL(tenant), nil)
		info, err := ctl.Info(ctx)
		if err != nil || info.TimeZone == "UTC" {
			t.Fatalf("%s: zone %q (%v), want a tenant outside UTC", tenant, info.TimeZone, err)
		}
		devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 4, Seed: uint64(40 + k)})
		if err != nil || len(devs) == 0 {
			t.Fatalf("%s: sample: %v", tenant, err)
		}
		c := newClient(t, sim, tenant, tenant+"-client", nil)
		want := map[string]string{}
		for _, d := range devs {
			want[d.Name] = d.LastSeen.UTC().Truncate(time.Second).Format(time.RFC3339)
			if d.Presence == "long_unseen" {
				continue // outside the query's 7 days
			}
			res, err := c.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": d.Name})
			if err != nil || len(res.Rows) != 1 {
				t.Fatalf("%s %s (%s): %v, %d rows", tenant, d.Name, d.Presence, err, len(res.Rows))
			}
			row := res.Rows[0]
			if got := row["device.last_seen"]; got != want[d.Name] {
				t.Errorf("%s (%s) %s: execute device.last_seen %#v, want %q", tenant, info.TimeZone, d.Name, got, want[d.Name])
			}
			if got := row["device.name"]; got != d.Name {
				t.Errorf("%s %s: device.name %#v, want it untouched", tenant, d.Name, got)
			}
		}
		seen := 0
		err = c.Export(ctx, "#dexbridge_discovery_devices", map[string]string{"platform": devs[0].Platform}, func(header, rec []string) error {
			row := map[string]string{}
			for i, h := range header {
				row[h] = rec[i]
			}
			if w, ok := want[row["device.name"]]; ok {
				seen++
				if row["device.last_seen"] != w {
					t.Errorf("%s: export %s device.last_seen %q, want %q", tenant, row["device.name"], row["device.last_seen"], w)
				}
			}
			if v := row["device.login.last_login_time"]; v != "" {
				if _, err := time.Parse(time.RFC3339, v); err != nil || v[len(v)-1] != 'Z' {
					t.Errorf("%s: export device.login.last_login_time %q is not RFC 3339 UTC", tenant, v)
				}
			}
			return nil
		})
		if err != nil || seen == 0 {
			t.Errorf("%s: export: %v, %d sampled devices among its rows", tenant, err, seen)
		}
	}
}

func TestNormalizeTime(t *testing.T) {
	for _, tt := range []struct {
		in, want any
	}{
		{"2023-07-17 17:53:49", "2023-07-17T17:53:49Z"},
		{"2023-03-07T15:56:02", "2023-03-07T15:56:02Z"},
		{"2023-07-17T19:53:49+02:00", "2023-07-17T17:53:49Z"},
		{time.Date(2023, 7, 17, 19, 53, 49, 0, time.FixedZone("x", 2*3600)), "2023-07-17T17:53:49Z"},
		{nil, nil}, {"", ""}, {"yesterday", "yesterday"}, {int64(5), int64(5)},
	} {
		if got := NormalizeTime(tt.in); got != tt.want {
			t.Errorf("NormalizeTime(%#v): got %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

// parseTimeByLayouts is ParseTime as it was before parseWholeSeconds: every layout
// in turn.
func parseTimeByLayouts(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) < len("2006-01-02T15:04:05") {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// FuzzParseTime checks that ParseTime reads every string as trying each layout in
// turn did: the same instant, in UTC, or not a time.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2023-07-17 17:53:49", "2023-07-17T17:53:49", "2023-07-17T17:53:49Z", "2023-07-17T19:53:49+02:00",
		"2023-07-17 17:53:49.250", "2023-07-17T17:53:49.5Z", "2023-07-17  17:53:49", " 2023-07-17 17:53:49\t",
		"2024-02-29 00:00:00", "2023-02-29 00:00:00", "2023-04-31T12:00:00", "2023-12-31T23:59:59Z",
		"2023-07-17 24:00:00", "2023-07-17 23:60:00", "2023-07-17 23:59:60", "2023-00-17 10:00:00",
		"2023-13-17 10:00:00", "2023-07-00 10:00:00", "0000-01-01 00:00:00", "9999-12-31T23:59:59Z",
		"2023-07-17x17:53:49", "2023-07-17 17:53:4x", "+023-07-17 17:53:49", "2023-7-17 17:53:49Z",
		"2023-07-17 17:53:49Z", "2023-07-17T17:53:49z", "2023-07-17T17:53:49+00:00", "2023-07-17T17:53:49-00:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTime(s)
		want, wantOK := parseTimeByLayouts(s)
		if ok != wantOK || !got.Equal(want) || (ok && got.Location() != time.UTC) {
			t.Errorf("ParseTime(%q) = %v, %v; the layouts in turn: %v, %v", s, got, ok, want, wantOK)
		}
	})
}

// BenchmarkParseTime reads the forms of an export's cells: as the instance writes
// them, and as the client hands them on (RFC 3339).
//
//	go test -run '^$' -bench ParseTime -benchmem ./internal/nexthink/
func BenchmarkParseTime(b *testing.B) {
	for _, s := range []string{"2023-07-17 17:53:49", "2023-07-17T17:53:49Z"} {
		b.Run("layouts/"+s, func(b *testing.B) {
			for b.Loop() {
				parseTimeByLayouts(s)
			}
		})
		b.Run("ParseTime/"+s, func(b *testing.B) {
			for b.Loop() {
				ParseTime(s)
			}
		})
	}
}
