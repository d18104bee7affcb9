package nql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mapRow is a row of the in-memory test Source.
type mapRow map[string]Value

func (r mapRow) Value(f string) Value { return r[f] }

// memSource is an in-memory Source: primary tables by name, related rows linked to
// devices by device.uid and to users by user.uid.
type memSource struct {
	tables  map[string][]mapRow
	scans   int
	related int
}

func (s *memSource) Scan(ctx context.Context, table string, _ Window, fn func(Row) error) error {
	s.scans++
	for _, r := range s.tables[table] {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) Related(ctx context.Context, obj Row, table string, _ Window, fn func(Row) error) error {
	s.related++
	key := "device.uid"
	id := obj.Value(key)
	if id == nil {
		key = "user.uid"
		id = obj.Value(key)
	}
	for _, r := range s.tables[table] {
		if r[key] == id {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexedSource adds an Indexer over the fields in indexed (case-insensitive, as NQL
// string equality is).
type indexedSource struct {
	*memSource
	indexed map[string]bool
	lookups int
}

func (s *indexedSource) Lookup(_ context.Context, table, field string, values []string) ([]Row, bool) {
	if !s.indexed[table+"/"+field] {
		return nil, false
	}
	s.lookups++
	var out []Row
	for _, r := range s.tables[table] {
		v, _ := r[field].(string)
		for _, want := range values {
			if strings.EqualFold(v, want) {
				out = append(out, r)
				break
			}
		}
	}
	return out, true
}

// testNow is the Now of every fixture run.
var testNow = time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return testNow.Add(-d) }

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// fixture is a small fleet: PC-1 (Windows, recent, outdated Office 365, perf events,
// remote-action outputs), PC-2 (current Office 365, old Office Professional, perf
// events only outside 24h), MAC-3 (seen 10 days ago), PC-4 (no events), PC-5 (seen
// exactly 7 days ago) and PC-6 (seen exactly now).
func fixture() *memSource {
	dev := func(uid, name, platform string, seen time.Time, bootDays int64, extra mapRow) mapRow {
		r := mapRow{
			"device.uid": uid, "device.name": name, "device.collector.uid": "c-" + uid,
			"device.entity": "HQ", "device.operating_system.platform": platform,
			"device.operating_system.name": platform + " 11", "device.hardware.type": "laptop",
			"device.hardware.manufacturer": "Acme", "device.hardware.memory": int64(16e9),
			"device.last_seen": seen, "device.boot.days_since_last_full_boot": bootDays,
		}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	session := func(dev, user, userUID string, end time.Time) mapRow {
		return mapRow{"device.uid": dev, "device.name": dev, "user.name": user, "user.uid": userUID,
			"session.events.start_time": end.Add(-hour), "session.events.end_time": end,
			"session.events.user_interaction_time": int64(600000)}
	}
	pkg := func(dev, name, version string) mapRow {
		return mapRow{"device.uid": dev, "package.name": name, "package.version": version,
			"package.publisher": "Microsoft"}
	}
	perf := func(dev string, free int64, end time.Time) mapRow {
		return mapRow{"device.uid": dev, "device_performance.events.system_drive_free_space": free,
			"device_performance.events.end_time": end, "device_performance.events.cpu_usage": 12.5}
	}
	exec := func(req, dev, devName, status string, t time.Time) mapRow {
		return mapRow{"remote_action.executions.request_id": req, "device.uid": dev,
			"device.name": devName, "device.collector.uid": "c-" + dev,
			"remote_action.name": "Get OneDrive status", "remote_action.nql_id": "#get_onedrive_status",
			"remote_action.executions.status": status, "remote_action.executions.status_details": "",
			"remote_action.executions.outputs": `{"OneDriveStatus":"ok"}`, "remote_action.executions.time": t}
	}
	return &memSource{tables: map[string][]mapRow{
		"devices": {
			dev("d1", "PC-1", "Windows", ago(hour), 12, mapRow{
				"remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList": `["-"]`,
				"remote_action.get_outlook_online_windows.execution.outputs.IsOnline":                        "No",
				"remote_action.get_outlook_online_windows.execution.status":                                  "success",
				"remote_action.get_onedrive_status.execution.outputs.OneDriveStatus":                         "OneDrive is not installed",
				"remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount":                 int64(2),
				"remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds": "4",
				"remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoDCDiscoveryInSeconds": 7.5,
				"device.hardware.model": "X1",
			}),
			dev("d2", "PC-2", "Windows", ago(2*day), 3, nil),
			dev("d3", "MAC-3", "macOS", ago(10*day), 1, nil),
			dev("d4", "PC-4", "Windows", ago(3*hour), 0, mapRow{"device.hardware.memory": int64(8e9)}),
			dev("d5", "PC-5", "Windows", ago(7*day), 0, nil),
			dev("d6", "PC-6", "Windows", testNow, 0, nil),
		},
		"users": {
			{"user.uid": "u1", "user.name": "alice", "user.upn": "alice@example.com"},
			{"user.uid": "u2", "user.name": "bob", "user.upn": "bob@example.com"},
		},
		"session.events": {
			session("d1", "alice", "u1", ago(2*hour)),
			session("d2", "alice", "u1", ago(3*day)),
			session("d3", "alice", "u1", ago(1*day)),
			session("d4", "bob", "u2", ago(8*day)),
			session("d1", "bob", "u2", ago(5*hour)),
			session("d5", "alice", "u1", ago(1*day)),
		},
		"package.installed_packages": {
			pkg("d1", "Microsoft 365", "15.0.1"),
			pkg("d1", "Microsoft Teams", "1.0"),
			pkg("d2", "Microsoft 365", "16.0.1"),
			pkg("d2", "Microsoft Office Professional", "15.2"),
		},
		"device_performance.events": {
			// Neither first nor last in order is the latest, so last() must use the time.
			perf("d1", 30e9, ago(5*hour)),
			perf("d1", 50e9, ago(hour)),
			perf("d1", 10e9, ago(30*hour)),
			perf("d2", 20e9, ago(48*hour)),
		},
		"remote_action.executions": {
			exec("req-1", "d1", "PC-1", "success", ago(hour)),
			exec("req-2", "d2", "PC-2", "in_progress", ago(2*hour)),
			exec("req-1", "d2", "PC-2", "failure", ago(3*hour)),
			exec("req-3", "d4", "PC-4", "success", ago(30*hour)),
		},
		"alert.alerts": {
			{"device.uid": "d1", "device.name": "PC-1", "alert.monitor.name": "High CPU",
				"alert.status": "open", "alert.monitor.priority": "high", "alert.trigger_time": ago(hour)},
			{"device.uid": "d2", "device.name": "PC-2", "alert.monitor.name": "Low disk",
				"alert.status": "closed", "alert.monitor.priority": "low", "alert.trigger_time": ago(2 * hour)},
		},
	}}
}

// show renders a value with its type so row comparisons are exact.
func show(v Value) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case int64:
		return "i" + strconv.FormatInt(x, 10)
	case float64:
		return "f" + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("?%T(%v)", v, v)
}

func showRows(rows [][]Value) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("[")
		for k, v := range r {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(show(v))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// run compiles and runs q over src at testNow.
func run(t *testing.T, src Source, q string, params map[string]string) *Result {
	t.Helper()
	p, err := Compile(q, DefaultSchema())
	if err != nil {
		t.Fatalf("Compile(%q): %v", q, err)
	}
	res, err := p.Run(context.Background(), src, params, RunOptions{Now: testNow})
	if err != nil {
		t.Fatalf("Run(%q): %v", q, err)
	}
	return res
}
