package nxql_test

import (
	"context"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

// BenchmarkRun measures the queries an Engine answers most: one device by name
// (indexed), and discovery's device list and user-device activity over a fleet
// of 50 000 devices.
func BenchmarkRun(b *testing.B) {
	f := newFleet(b, 50_000, 1)
	for _, bm := range []struct{ name, query string }{
		{"device_by_name", `(select (device_uid name #"action:get_onedrive_status/OneDriveStatus") (from device (where device (eq name (string "EU-012345")))))`},
		{"discovery_devices", `(select (device_uid name platform last_seen total_ram) (from device (where device (ge last_seen (datetime now-30d)))))`},
		{"discovery_activity", `(select ((device (device_uid)) (user (name)) last_end_time) (from (device user) (with session (compute last_end_time) (between now-30d now))))`},
	} {
		q, err := nxql.Compile(bm.query, nxql.NewSchema())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			rows := 0
			for b.Loop() {
				res, err := q.Run(context.Background(), fleetSource{f}, nxql.RunOptions{Now: fixedNow, Platforms: []string{"windows", "mac_os"}})
				if err != nil {
					b.Fatal(err)
				}
				rows = len(res.Rows)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
