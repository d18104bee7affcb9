package nxql_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

// TestFormCheckRefuses: a form that cannot answer its NQL columns is refused
// with the reason.
func TestFormCheckRefuses(t *testing.T) {
	ok := nxql.FormQuery{Text: `(select (device_uid name) (from device (where device (eq name (string "%1")))))`}
	tests := []struct {
		name string
		f    nxql.Form
		want string
	}{
		{"no query", nxql.Form{Columns: map[string]nxql.ColumnMap{"device.name": {Column: "name"}}}, "no NXQL query"},
		{"bad text", nxql.Form{NXQL: []nxql.FormQuery{{Text: "(select (name) (from devices))"}},
			Columns: map[string]nxql.ColumnMap{"device.name": {Column: "name"}}}, "nxql[0]"},
		{"unselected column", nxql.Form{NXQL: []nxql.FormQuery{ok},
			Columns: map[string]nxql.ColumnMap{"device.last_seen": {Column: "last_seen"}}}, "columns.device.last_seen"},
		{"no key", nxql.Form{NXQL: []nxql.FormQuery{ok, ok},
			Columns: map[string]nxql.ColumnMap{"device.name": {Column: "name"}}}, "key"},
		{"no columns", nxql.Form{NXQL: []nxql.FormQuery{ok}}, "no columns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Check(nxql.NewSchema())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestFormMergeAndMap: rows of later queries join on the key (case aside), a
// device they lack takes the missing value, and columns map back to NQL names.
func TestFormMergeAndMap(t *testing.T) {
	f := nxql.Form{Key: "device_uid", NXQL: []nxql.FormQuery{{}, {Missing: map[string]any{"number_of_packages": 0}}},
		Columns: map[string]nxql.ColumnMap{
			"device.collector.uid":             {Column: "device_uid"},
			"outdated":                         {Column: "number_of_packages"},
			"device.operating_system.platform": {Column: "platform", Map: map[string]string{"windows": "Windows"}},
			"ram_gb":                           {Column: "ram", Divide: 1024},
		}}
	got := f.Merge([][]map[string]any{
		{{"device_uid": "A", "platform": "windows", "ram": int64(2048)}, {"device_uid": "b", "platform": "mac_os", "ram": nil}},
		{{"device_uid": "a", "number_of_packages": int64(3)}},
	})
	a, b := f.ToNQL(got[0]), f.ToNQL(got[1])
	if a["outdated"] != int64(3) || a["device.operating_system.platform"] != "Windows" || a["ram_gb"] != 2.0 {
		t.Errorf("a: %v", a)
	}
	if b["outdated"] != int64(0) || b["device.operating_system.platform"] != "mac_os" || b["ram_gb"] != nil {
		t.Errorf("b: %v", b)
	}
}

// TestFormWindow: a window must be in every query; Text puts the period there.
func TestFormWindow(t *testing.T) {
	f := nxql.Form{Window: "30d", NXQL: []nxql.FormQuery{{Text: `(select (device_uid) (from device (where device (ge last_seen (datetime now-30d)))))`}},
		Columns: map[string]nxql.ColumnMap{"device.collector.uid": {Column: "device_uid"}}}
	if err := f.Check(nxql.NewSchema()); err != nil {
		t.Fatal(err)
	}
	for period, want := range map[time.Duration]string{0: "now-30d", 90 * 24 * time.Hour: "now-90d", 36 * time.Hour: "now-36h"} {
		if got := f.Text(0, period); !strings.Contains(got, "(datetime "+want+")") {
			t.Errorf("period %v: %s", period, got)
		}
	}
	f.Window = "7d"
	if err := f.Check(nxql.NewSchema()); err == nil || !strings.Contains(err.Error(), "now-7d") {
		t.Errorf("a window absent from the text: %v", err)
	}
}

func TestDynamicName(t *testing.T) {
	for col, want := range map[string]string{
		"#Location":                    "device.#location",
		"#Cost center (EU)":            "device.#cost_center_eu",
		"#score:Device health":         "device.score.device_health",
		"#score:Device health/Restart": "device.score.device_health.restart",
		"#action:get_status/Status":    "",
		"#score:Device health/":        "",
		"#--":                          "",
		"name":                         "",
	} {
		got, ok := nxql.DynamicName(col)
		if got != want || ok != (want != "") {
			t.Errorf("DynamicName(%q) = %q, %v; want %q", col, got, ok, want)
		}
	}
}
