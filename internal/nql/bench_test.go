package nql

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchDevice is a device row with fields held as Values, boxed once: Row.Value
// returns an interface, and boxing a string or time on every call would allocate in
// the Source and hide the evaluator's own figures.
type benchDevice struct {
	uid, name, collector, platform, status, online Value
	lastSeen                                       Value
	bootDays                                       Value
	highImpact                                     Value
	perf                                           []benchEvent
	packages                                       []benchPackage
}

func (d *benchDevice) Value(f string) Value {
	switch f {
	case "device.name":
		return d.name
	case "device.uid":
		return d.uid
	case "device.collector.uid":
		return d.collector
	case "device.operating_system.platform":
		return d.platform
	case "device.last_seen":
		return d.lastSeen
	case "device.boot.days_since_last_full_boot":
		return d.bootDays
	case "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus":
		return d.status
	case "remote_action.get_outlook_online_windows.execution.outputs.IsOnline":
		return d.online
	case "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount":
		return d.highImpact
	}
	return nil
}

type benchEvent struct {
	free, end Value
}

func (e *benchEvent) Value(f string) Value {
	switch f {
	case "device_performance.events.system_drive_free_space":
		return e.free
	case "device_performance.events.end_time":
		return e.end
	}
	return nil
}

type benchPackage struct{ name, version Value }

func (p *benchPackage) Value(f string) Value {
	switch f {
	case "package.name":
		return p.name
	case "package.version":
		return p.version
	}
	return nil
}

type benchSource struct {
	devices []*benchDevice
}

func (s *benchSource) Scan(_ context.Context, table string, _ Window, fn func(Row) error) error {
	if table != "devices" {
		return nil
	}
	for _, d := range s.devices {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

func (s *benchSource) Related(_ context.Context, obj Row, table string, _ Window, fn func(Row) error) error {
	d := obj.(*benchDevice)
	switch table {
	case "device_performance.events":
		for k := range d.perf {
			if err := fn(&d.perf[k]); err != nil {
				return err
			}
		}
	case "package.installed_packages":
		for k := range d.packages {
			if err := fn(&d.packages[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// benchIndexed indexes devices by lower-cased name.
type benchIndexed struct {
	*benchSource
	byName map[string]*benchDevice
}

func (s *benchIndexed) Lookup(_ context.Context, table, field string, values []string) ([]Row, bool) {
	if table != "devices" || field != "device.name" {
		return nil, false
	}
	var out []Row
	for _, v := range values {
		if d, ok := s.byName[strings.ToLower(v)]; ok {
			out = append(out, d)
		}
	}
	return out, true
}

func newBenchFleet(n int) *benchIndexed {
	s := &benchIndexed{benchSource: &benchSource{}, byName: make(map[string]*benchDevice, n)}
	for i := 0; i < n; i++ {
		id := strconv.Itoa(i)
		d := &benchDevice{
			uid: "u" + id, name: "PC-" + id, collector: "c" + id, platform: "Windows",
			status: "ok", online: "Yes", lastSeen: ago(time.Duration(i%10) * day),
			bootDays: int64(i % 20), highImpact: int64(i % 3),
			perf: []benchEvent{
				{free: int64(i%100) * 1e9, end: ago(hour)},
				{free: int64(i%50) * 1e9, end: ago(5 * hour)},
				{free: int64(1e9), end: ago(30 * hour)},
			},
			packages: []benchPackage{
				{"Microsoft 365", []string{"15.0.1", "16.0.1"}[i%2]},
				{"Microsoft Teams", "1.0"},
				{"7-Zip", "23.01"},
			},
		}
		s.devices = append(s.devices, d)
		s.byName[strings.ToLower("PC-"+id)] = d
	}
	return s
}

func benchRun(b *testing.B, q string, src Source, params map[string]string, wantRows int) {
	b.Helper()
	p, err := Compile(q, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	opts := RunOptions{Now: testNow}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := p.Run(ctx, src, params, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Rows) != wantRows {
			b.Fatalf("got %d rows, want %d", len(res.Rows), wantRows)
		}
	}
}

// BenchmarkDeviceLookup is the dexbridge NQL wrapper's case: one device selected by
// name among 100 000, with the Source's index and with a full scan.
func BenchmarkDeviceLookup(b *testing.B) {
	fleet := newBenchFleet(100000)
	q := guideQuery(b, "diagnose_onedrive_issues")
	params := map[string]string{"device_name": "pc-73456"}
	b.Run("indexer", func(b *testing.B) { benchRun(b, q, fleet, params, 1) })
	b.Run("scan", func(b *testing.B) { benchRun(b, q, fleet.benchSource, params, 1) })
}

// BenchmarkSlowPC runs the slow-PC query of the guide, verbatim, over 10 000 devices; "fleet"
// drops its device filter so both joins run for every device seen in 7 days.
func BenchmarkSlowPC(b *testing.B) {
	fleet := newBenchFleet(10000)
	q := guideQuery(b, "diagnose_slow_pc_issues")
	params := map[string]string{"device_name": "PC-4242"}
	b.Run("indexer", func(b *testing.B) { benchRun(b, q, fleet, params, 1) })
	b.Run("scan", func(b *testing.B) { benchRun(b, q, fleet.benchSource, params, 1) })
	all := strings.Replace(q, "| where name == $device_name\n", "", 1)
	b.Run("fleet", func(b *testing.B) { benchRun(b, all, fleet.benchSource, nil, 7000) })
}

func BenchmarkCompile(b *testing.B) {
	q := guideQuery(b, "diagnose_slow_pc_issues")
	s := DefaultSchema()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(q, s); err != nil {
			b.Fatal(err)
		}
	}
}
