package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"
)

var testNow = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

func newTestFleet(t testing.TB, size int, scenarios bool) *Fleet {
	t.Helper()
	f, err := New(Config{Size: size, Seed: 42, Prefix: "EU", Scenarios: scenarios, Clock: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// dump renders every device field and every event of a fleet, for comparisons.
func dump(t *testing.T, f *Fleet) string {
	t.Helper()
	ctx := context.Background()
	var out []byte
	fields := []string{"device.name", "device.collector.uid", "device.operating_system.name",
		"device.hardware.model", "device.last_seen", "device.login.last_login_user_name",
		"remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"}
	err := f.Scan(ctx, "devices", time.Time{}, time.Time{}, func(r Row) error {
		for _, fl := range fields {
			out = fmt.Appendf(out, "%v|", r.Value(fl))
		}
		for _, tb := range []string{"session.events", "package.installed_packages", "device_performance.events", "execution.crashes"} {
			err := f.Related(ctx, r, tb, time.Time{}, time.Time{}, func(e Row) error {
				out = fmt.Appendf(out, "%v,%v,%v,%v;", e.Value("user.name"), e.Value("session.events.end_time"),
					e.Value("package.version"), e.Value("device_performance.events.system_drive_free_space"))
				return nil
			})
			if err != nil {
				return err
			}
		}
		out = append(out, '\n')
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return string(out)
}

func TestFleetIsDeterministic(t *testing.T) {
	a, b := dump(t, newTestFleet(t, 200, true)), dump(t, newTestFleet(t, 200, true))
	if a != b {
		t.Fatal("two fleets with the same seed and size differ")
	}
	other, err := New(Config{Size: 200, Seed: 43, Prefix: "EU", Scenarios: true, Clock: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if dump(t, other) == a {
		t.Fatal("fleets with different seeds are identical")
	}
}

func TestFleetSizeLimits(t *testing.T) {
	for _, size := range []int{0, 9, 500_001} {
		if _, err := New(Config{Size: size, Prefix: "EU"}); err == nil {
			t.Errorf("New(size %d): got nil error, want one", size)
		}
	}
}

func TestDeviceLookupsRoundTrip(t *testing.T) {
	f := newTestFleet(t, 5000, true)
	for _, i := range []int{0, 5, 11, 12, 13, 999, 4999} {
		d := f.Device(i)
		if got, ok := f.DeviceByName(d.Name); !ok || got != i {
			t.Errorf("DeviceByName(%q): got %d %v, want %d", d.Name, got, ok, i)
		}
		if got, ok := f.DeviceByCollectorUID(d.CollectorUID); !ok || got != i {
			t.Errorf("DeviceByCollectorUID(%q): got %d %v, want %d", d.CollectorUID, got, ok, i)
		}
	}
	for _, name := range []string{"EU-5000", "EU-000005", "EU-12", "XX-000013", "PC-NOPE"} {
		if i, ok := f.DeviceByName(name); ok {
			t.Errorf("DeviceByName(%q): got %d, want not found", name, i)
		}
	}
	if _, ok := f.DeviceByName("pc-healthy"); !ok {
		t.Error("DeviceByName is not case-insensitive")
	}
	if _, ok := f.DeviceByCollectorUID("00000000-0000-4000-8000-000000000000"); ok {
		t.Error("DeviceByCollectorUID accepted a foreign UID")
	}
}

func TestUserLookupsRoundTrip(t *testing.T) {
	f := newTestFleet(t, 100_000, true)
	ctx := context.Background()
	for _, u := range []uint32{0, 2, 10, 11, 12, 37, 26 * 200, 99_999} {
		r := &userRow{f, u}
		for _, field := range []string{"user.name", "user.upn", "user.ad.email_address", "user.sid"} {
			v := r.Value(field).(string)
			rows, ok := f.Lookup(ctx, "users", field, []string{v})
			if !ok || len(rows) != 1 || rows[0].(*userRow).u != u {
				t.Errorf("Lookup(users, %s, %q): got %v, want user %d", field, v, rows, u)
			}
		}
	}
	seen := map[string]uint32{}
	for u := range uint32(f.nUsers) {
		n := f.userName(u)
		if prev, dup := seen[n]; dup {
			t.Fatalf("users %d and %d are both named %q", prev, u, n)
		}
		seen[n] = u
	}
}

func TestScenarioDevices(t *testing.T) {
	f := newTestFleet(t, 50, true)
	ctx := context.Background()
	const (
		online   = "remote_action.get_outlook_online_windows.execution.outputs.IsOnline"
		plugins  = "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList"
		onedrive = "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"
		startup  = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount"
		apps     = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactApplications"
		gpo      = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds"
		gpoDC    = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoDCDiscoveryInSeconds"
		spooler  = "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus"
		stuck    = "remote_action.get_printer_status_windows.execution.outputs.StuckJobs"
		boot     = "device.boot.days_since_last_full_boot"
	)
	healthyWin := map[string]any{online: "Yes", plugins: `["-"]`, onedrive: "OneDrive is running",
		startup: int64(0), apps: "", gpo: 1.2, gpoDC: 0.3, spooler: "Running", stuck: int64(0), boot: int64(2),
		"device.operating_system.platform": "Windows"}
	tests := []struct {
		name   string
		change map[string]any
		office string
		freeGB int64
	}{
		{"PC-OUTLOOK-OFFLINE", map[string]any{online: "No"}, "16.", 100},
		{"PC-OUTLOOK-PLUGIN", map[string]any{plugins: `["Grammarly"]`}, "16.", 100},
		{"PC-OFFICE-OUTDATED", nil, "15.0.4569", 100},
		{"PC-ONEDRIVE", map[string]any{onedrive: "OneDrive is installed but not running"}, "16.", 100},
		{"PC-LOW-DISK", nil, "16.", 4},
		{"PC-STARTUP", map[string]any{startup: int64(2), apps: "Spotify,Teams Machine-Wide Installer"}, "16.", 100},
		{"PC-GPO", map[string]any{gpo: 8.5, gpoDC: 4.0}, "16.", 100},
		{"PC-UPTIME", map[string]any{boot: int64(21)}, "16.", 100},
		{"PC-PRINTER", map[string]any{spooler: "Stopped", stuck: int64(3)}, "16.", 100},
		{"PC-HEALTHY", nil, "16.", 100},
		{"PC-OFFLINE", nil, "16.", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, _ := f.Lookup(ctx, "devices", "device.name", []string{tt.name})
			if len(rows) != 1 {
				t.Fatalf("lookup: got %d rows, want 1", len(rows))
			}
			r := rows[0]
			for field, want := range healthyWin {
				if w, ok := tt.change[field]; ok {
					want = w
				}
				if got := r.Value(field); got != want {
					t.Errorf("%s: got %#v, want %#v", field, got, want)
				}
			}
			var office []string
			var free, n int64
			_ = f.Related(ctx, r, "package.installed_packages", time.Time{}, time.Time{}, func(p Row) error {
				if p.Value("package.name") == "Microsoft 365" {
					office = append(office, p.Value("package.version").(string))
				}
				return nil
			})
			if len(office) != 1 || len(office[0]) < len(tt.office) || office[0][:len(tt.office)] != tt.office {
				t.Errorf("Microsoft 365 versions: got %v, want one starting with %s", office, tt.office)
			}
			last := r.Value("device.last_seen").(time.Time)
			_ = f.Related(ctx, r, "device_performance.events", last.Add(-24*time.Hour), time.Time{}, func(p Row) error {
				free += p.Value("device_performance.events.system_drive_free_space").(int64)
				n++
				return nil
			})
			if n == 0 || (free/n+500_000_000)/1_000_000_000 != tt.freeGB {
				t.Errorf("free space over 24h: got %d bytes avg over %d events, want ~%d GB", free/max(n, 1), n, tt.freeGB)
			}
		})
	}
}

func TestScenarioUsers(t *testing.T) {
	f := newTestFleet(t, 50, true)
	ctx := context.Background()
	rows, _ := f.Lookup(ctx, "users", "user.name", []string{"jdoe"})
	if len(rows) != 1 || rows[0].Value("user.ad.full_name") != "John Doe" || rows[0].Value("user.upn") != "jdoe@example.com" {
		t.Fatalf("jdoe: got %v", rows)
	}
	last := map[string]time.Time{}
	err := f.Related(ctx, rows[0], "session.events", testNow.Add(-7*24*time.Hour), time.Time{}, func(r Row) error {
		n := r.Value("device.name").(string)
		if e := r.Value("session.events.end_time").(time.Time); e.After(last[n]) {
			last[n] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || !last["PC-OUTLOOK-OFFLINE"].After(last["MAC-HEALTHY"]) {
		t.Errorf("jdoe's devices in 7 days: got %v, want PC-OUTLOOK-OFFLINE more recent than MAC-HEALTHY", last)
	}
	for name, device := range map[string]string{"asmith": "PC-LOW-DISK", "bwayne": "PC-HEALTHY"} {
		i, _ := f.DeviceByName(device)
		if got := f.UserName(f.PrimaryUser(i)); got != name {
			t.Errorf("user of %s: got %s, want %s", device, got, name)
		}
	}
}

func TestFleetMix(t *testing.T) {
	f := newTestFleet(t, 20_000, false)
	var mac, stale, inactive int
	for i := range f.devs {
		d := &f.devs[i]
		if d.mac {
			mac++
		}
		if d.lastSeenAgo > 40*86400 {
			stale++
		}
		if d.activityAgo[0] == noActivity && d.lastSeenAgo < 30*86400 {
			inactive++
		}
	}
	n := len(f.devs)
	if mac < n*20/100 || mac > n*30/100 {
		t.Errorf("macOS devices: got %d of %d, want about 25%%", mac, n)
	}
	if stale == 0 || inactive == 0 {
		t.Errorf("got %d devices last seen 40+ days ago and %d without activity, want some of each", stale, inactive)
	}
}

func TestRemediationMakesDeviceHealthy(t *testing.T) {
	f := newTestFleet(t, 50, true)
	ctx := context.Background()
	tests := []struct {
		device, action, field string
		want                  any
	}{
		{"PC-OUTLOOK-OFFLINE", "#set_outlook_online", "remote_action.get_outlook_online_windows.execution.outputs.IsOnline", "Yes"},
		{"PC-OUTLOOK-PLUGIN", "#set_outlook_plugins", "remote_action.get_outlook_plugin_crash_details_windows.execution.outputs.CrashedPluginList", `["-"]`},
		{"PC-ONEDRIVE", "#repair_onedrive", "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus", "OneDrive is running"},
		{"PC-STARTUP", "#disable_application_from_startup_menu", "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount", int64(0)},
		{"PC-GPO", "#update_group_policy_settings", "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds", 1.1},
		{"PC-PRINTER", "#restart_print_spooler", "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus", "Running"},
		{"PC-PRINTER", "#clear_print_queue", "remote_action.get_printer_status_windows.execution.outputs.StuckJobs", int64(0)},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			i, _ := f.DeviceByName(tt.device)
			h := f.AddExecution(Execution{RequestID: "r-" + tt.action, Device: i, ActionID: tt.action, Status: StatusPending, Time: testNow})
			rows, _ := f.Lookup(ctx, "devices", "device.name", []string{tt.device})
			if got := rows[0].Value(tt.field); got == tt.want {
				t.Fatalf("%s before the remediation: got %#v already", tt.field, got)
			}
			f.SetStatus(h, StatusSuccess, "ok", testNow)
			rows, _ = f.Lookup(ctx, "devices", "device.name", []string{tt.device})
			if got := rows[0].Value(tt.field); got != tt.want {
				t.Errorf("%s after the remediation: got %#v, want %#v", tt.field, got, tt.want)
			}
			ex, _ := f.Lookup(ctx, "remote_action.executions", "remote_action.executions.request_id", []string{"r-" + tt.action})
			if len(ex) != 1 || ex[0].Value("remote_action.executions.status") != StatusSuccess || ex[0].Value("device.name") != tt.device {
				t.Errorf("execution row: got %v", ex)
			}
		})
	}
}

func TestRepairOfficeAndDiskCleanup(t *testing.T) {
	f := newTestFleet(t, 50, true)
	ctx := context.Background()
	office := func(name string) string {
		rows, _ := f.Lookup(ctx, "devices", "device.name", []string{name})
		var v string
		_ = f.Related(ctx, rows[0], "package.installed_packages", time.Time{}, time.Time{}, func(p Row) error {
			if p.Value("package.name") == "Microsoft 365" {
				v = p.Value("package.version").(string)
			}
			return nil
		})
		return v
	}
	i, _ := f.DeviceByName("PC-OFFICE-OUTDATED")
	f.SetStatus(f.AddExecution(Execution{RequestID: "a", Device: i, ActionID: "#repair_office_365"}), StatusSuccess, "", testNow)
	if got := office("PC-OFFICE-OUTDATED"); got != officeCurrentVersion {
		t.Errorf("Office after repair: got %q, want %q", got, officeCurrentVersion)
	}
	i, _ = f.DeviceByName("PC-LOW-DISK")
	f.SetStatus(f.AddExecution(Execution{RequestID: "b", Device: i, ActionID: "#disk_cleanup"}), StatusSuccess, "", testNow)
	rows, _ := f.Lookup(ctx, "devices", "device.name", []string{"PC-LOW-DISK"})
	_ = f.Related(ctx, rows[0], "device_performance.events", testNow.Add(-24*time.Hour), time.Time{}, func(p Row) error {
		if free := p.Value("device_performance.events.system_drive_free_space").(int64); free < 20_000_000_000 {
			t.Errorf("free space after cleanup: got %d, want above 20 GB", free)
		}
		return nil
	})
}

func TestDataCollectionExecutionShowsOnDevice(t *testing.T) {
	f := newTestFleet(t, 50, true)
	ctx := context.Background()
	i, _ := f.DeviceByName("PC-HEALTHY")
	h := f.AddExecution(Execution{RequestID: "dc", Device: i, ActionID: "#get_onedrive_status", Status: StatusInProgress, Time: testNow})
	value := func(field string) any {
		rows, _ := f.Lookup(ctx, "devices", "device.name", []string{"PC-HEALTHY"})
		return rows[0].Value("remote_action.get_onedrive_status.execution." + field)
	}
	if got := value("status"); got != StatusInProgress {
		t.Errorf("status while running: got %v, want in_progress", got)
	}
	if got := value("outputs.OneDriveStatus"); got != nil {
		t.Errorf("outputs while running: got %v, want nil", got)
	}
	e := f.SetStatus(h, StatusSuccess, detailsSuccess, testNow.Add(time.Minute))
	if got := value("status"); got != StatusSuccess {
		t.Errorf("status after success: got %v", got)
	}
	if got := value("time"); got != testNow.Add(time.Minute) {
		t.Errorf("time after success: got %v", got)
	}
	if e.Outputs["OneDriveStatus"] != "OneDrive is running" {
		t.Errorf("execution outputs: got %v", e.Outputs)
	}
}

func TestOnline(t *testing.T) {
	f := newTestFleet(t, 50, true)
	off, _ := f.DeviceByName("PC-OFFLINE")
	on, _ := f.DeviceByName("PC-HEALTHY")
	if f.Online(off) || !f.Online(on) {
		t.Fatalf("online: PC-OFFLINE %v, PC-HEALTHY %v; want false, true", f.Online(off), f.Online(on))
	}
	f.SetOnline(off, true)
	f.SetOnline(on, false)
	if !f.Online(off) || f.Online(on) {
		t.Errorf("after SetOnline: PC-OFFLINE %v, PC-HEALTHY %v; want true, false", f.Online(off), f.Online(on))
	}
}

// TestCollectionsAreNoLaterThanLastSeen: every device's data collections happened by
// the time it was last seen, as on a tenant, where the device reports them: a device
// long unseen has old collection times. It holds after a collection the API ran, and
// after the device is taken offline.
func TestCollectionsAreNoLaterThanLastSeen(t *testing.T) {
	f := newTestFleet(t, 2000, true)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		var long int
		err := f.Scan(ctx, "devices", time.Time{}, time.Time{}, func(r Row) error {
			seen := r.Value("device.last_seen").(time.Time)
			for _, a := range dataActions {
				at, ok := r.Value("remote_action." + a.id + ".execution.time").(time.Time)
				if !ok {
					continue // macOS
				}
				if at.After(seen) {
					t.Errorf("%s: %s collected %s at %v, after it was last seen at %v", when, r.Value("device.name"), a.id, at, seen)
				}
				if testNow.Sub(seen) > 7*24*time.Hour && testNow.Sub(at) > 7*24*time.Hour {
					long++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if long == 0 {
			t.Errorf("%s: no long-unseen device with old collections", when)
		}
	}
	check("generated")
	i, _ := f.DeviceByName("PC-HEALTHY")
	h := f.AddExecution(Execution{RequestID: "dc", Device: i, ActionID: "#get_onedrive_status", Status: StatusInProgress, Time: testNow})
	f.SetStatus(h, StatusSuccess, detailsSuccess, testNow)
	check("after a collection")
	f.SetOnline(i, false)
	check("taken offline")
}

// TestCollectionTimeIsFixed: a device's last scheduled collection happened at one
// time, whatever the clock says when it is read; last_seen moves with the clock.
func TestCollectionTimeIsFixed(t *testing.T) {
	now := testNow
	f, err := New(Config{Size: 50, Seed: 42, Prefix: "EU", Scenarios: true, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	i, _ := f.DeviceByName("PC-OFFLINE")
	read := func(field string) any {
		rows, _ := f.Lookup(context.Background(), "devices", "device.name", []string{"PC-OFFLINE"})
		return rows[0].Value(field)
	}
	const collected = "remote_action.get_printer_status_windows.execution.time"
	before, seen := read(collected), read("device.last_seen")
	now = now.Add(time.Hour)
	if got := read(collected); got != before {
		t.Errorf("collection time: got %v an hour later, want %v", got, before)
	}
	if got := read("device.last_seen"); got == seen {
		t.Errorf("last_seen of device %d did not move with the clock", i)
	}
}
