package fleet

import "time"

// Monitor names of the proactive scenarios (config/webhooks.yaml maps them).
const (
	MonitorOutlookCrashes  = "Outlook crashes"
	MonitorOneDrive        = "OneDrive not running"
	MonitorSlowPC          = "Slow PC"
	MonitorLowDisk         = "Low disk space"
	AlertOpen, AlertClosed = "open", "closed"
)

// Alert is a row of alert.alerts. Device and User are indices, -1 for none.
type Alert struct {
	Monitor      string
	Status       string // "open" or "closed"
	Context      string
	Priority     string
	Tags         string
	Device       int
	User         int
	TriggerTime  time.Time
	RecoveryTime time.Time // zero while open
}

// AddAlert stores a (fired) alert.
func (f *Fleet) AddAlert(a Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alerts = append(f.alerts, &a)
}

// UserByName returns the index of a user by login name.
func (f *Fleet) UserByName(name string) (int, bool) {
	u, ok := f.userByName(name)
	return int(u), ok
}

// UserName returns the login name of user u.
func (f *Fleet) UserName(u int) string { return f.userName(uint32(u)) }

// PrimaryUser returns the most recent user of device i.
func (f *Fleet) PrimaryUser(i int) int {
	d, _ := f.snapshot(uint32(i))
	return int(d.users[0])
}

// generateAlerts creates the alerts present at start: one per scenario problem that
// has a monitor, and a few on generated devices whose state matches a monitor.
func (f *Fleet) generateAlerts() {
	add := func(i uint32, monitor, priority, context string, trigger, recovery time.Time) {
		status := AlertOpen
		if !recovery.IsZero() {
			status = AlertClosed
		}
		f.alerts = append(f.alerts, &Alert{
			Monitor: monitor, Status: status, Context: context, Priority: priority,
			Tags: "[\"chatbot\"]", Device: int(i), User: int(f.devs[i].users[0]),
			TriggerTime: trigger, RecoveryTime: recovery,
		})
	}
	for i := range f.devs {
		d := &f.devs[i]
		r := rng{hash(f.seed, uint64(i), 31)}
		scenario := i < len(f.scenarios)
		if !scenario && !r.chance(0.02) {
			continue
		}
		trigger := ago(f.epoch, d.dcAgo+uint32(r.between(0, 3600)))
		var recovery time.Time
		if !scenario && r.chance(0.3) {
			recovery = trigger.Add(time.Duration(r.between(600, 6*3600)) * time.Second)
		}
		switch {
		case d.crash == 1:
			add(uint32(i), MonitorOutlookCrashes, "high", "binary.name: outlook.exe", trigger, recovery)
		case d.freeMB < 6000:
			add(uint32(i), MonitorLowDisk, "medium", "system_drive_free_space below 6 GB", trigger, recovery)
		case !d.mac && d.oneDrive != 0:
			add(uint32(i), MonitorOneDrive, "medium", oneDriveStatuses[d.oneDrive], trigger, recovery)
		case !d.mac && (d.startup != 0 || d.gpoApplied+d.gpoDC > 100):
			add(uint32(i), MonitorSlowPC, "low", "high startup impact", trigger, recovery)
		}
	}
}
