package fleet

// scenarioUser is a named user of the scenario devices.
type scenarioUser struct {
	name, fullName, department string
}

// scenarioUsers are the named users, by index.
var scenarioUsers = []scenarioUser{
	{"jdoe", "John Doe", "Finance"},
	{"asmith", "Alice Smith", "Sales"},
	{"bwayne", "Bruce Wayne", "Operations"},
	{"hjordan", "Hal Jordan", "Engineering"},
	{"dprince", "Diana Prince", "Legal"},
	{"pparker", "Peter Parker", "Marketing"},
	{"tstark", "Tony Stark", "Engineering"},
	{"srogers", "Steve Rogers", "Human Resources"},
	{"nromanoff", "Natasha Romanoff", "IT"},
	{"bbanner", "Bruce Banner", "Engineering"},
	{"ckent", "Clark Kent", "Marketing"},
}

// Scenario user indices.
const (
	uJDoe uint32 = iota
	uASmith
	uBWayne
	uHJordan
	uDPrince
	uPParker
	uTStark
	uSRogers
	uNRomanoff
	uBBanner
	uCKent
)

// scenario is a named device with exactly one problem.
type scenario struct {
	name  string
	user  uint32
	apply func(d *device)
}

// scenarios are the named devices of the first tenant, in index order. Each starts
// from healthy() and changes one thing.
var scenarios = []scenario{
	{"PC-OUTLOOK-OFFLINE", uJDoe, func(d *device) { d.outlookOff = true }},
	{"PC-OUTLOOK-PLUGIN", uHJordan, func(d *device) { d.plugin = 1; d.crash = 1 }},
	{"PC-OFFICE-OUTDATED", uDPrince, func(d *device) { d.office = officeOutdated }},
	{"PC-ONEDRIVE", uPParker, func(d *device) { d.oneDrive = 2 }},
	{"PC-LOW-DISK", uASmith, func(d *device) { d.freeMB = 4000 }},
	{"PC-STARTUP", uTStark, func(d *device) { d.startup = 1 }},
	{"PC-GPO", uSRogers, func(d *device) { d.gpoApplied, d.gpoDC = 85, 40 }},
	{"PC-UPTIME", uNRomanoff, func(d *device) { d.bootAgo = 21*86400 + 2*3600 }},
	{"PC-PRINTER", uBBanner, func(d *device) { d.spoolerStop = true; d.stuckJobs = 3 }},
	{"PC-HEALTHY", uBWayne, func(*device) {}},
	{"MAC-HEALTHY", uJDoe, func(d *device) {
		d.mac, d.os, d.model, d.memGB, d.office = true, 1, 12, 16, officeNone
		d.activityAgo[0] = 2 * 86400 // jdoe used PC-OUTLOOK-OFFLINE more recently
		d.lastSeenAgo = 20 * 60
	}},
	{"PC-OFFLINE", uCKent, func(d *device) {
		d.lastSeenAgo = 3 * 86400
		d.activityAgo[0] = 3*86400 + 1800
		d.loginAgo = d.activityAgo[0] + 6*3600
		d.bootAgo = d.lastSeenAgo + 2*86400 + 3600
	}},
}

// healthy is the base state of a scenario device: a Windows 11 laptop seen five
// minutes ago, booted two days ago, Office 16.x, OneDrive running, ~100 GB free, no
// startup or GPO issue, Outlook online, no crashed plugin, spooler running.
func healthy(user uint32) device {
	return device{
		lastSeenAgo: 5 * 60,
		bootAgo:     2*86400 + 3600,
		loginAgo:    2*86400 - 600,
		dcAgo:       3 * 3600,
		users:       [3]uint32{user},
		activityAgo: [3]uint32{10 * 60, noActivity, noActivity},
		nUsers:      1,
		freeMB:      100_000,
		capGB:       512,
		memGB:       16,
		os:          1,
		model:       1,
		office:      office365,
		gpoApplied:  12,
		gpoDC:       3,
	}
}
