package fleet

import (
	"time"
)

// Events are generated on the fly from (seed, device index, salt): nothing is stored.

// session is one session.events row of a device.
type session struct {
	user               uint32
	start, end         time.Time
	interactionSeconds int64
}

// sessions calls fn for each session of device i (all user slots), newest first per
// slot, back to the retention limit.
func (f *Fleet) sessions(i uint32, d *device, now time.Time, fn func(session) error) error {
	limit := now.Add(-retention)
	for k := 0; k < int(d.nUsers); k++ {
		if d.activityAgo[k] == noActivity {
			continue
		}
		r := rng{hash(f.seed, uint64(i), 41, uint64(k))}
		end := ago(now, d.activityAgo[k])
		for end.After(limit) {
			dur := time.Duration(r.between(1800, 9*3600)) * time.Second
			start := end.Add(-dur)
			inter := int64(dur.Seconds() * (0.3 + 0.6*r.float()))
			if err := fn(session{d.users[k], start, end, inter}); err != nil {
				return err
			}
			end = start.Add(-time.Duration(r.between(4*3600, 3*86400)) * time.Second)
		}
	}
	return nil
}

// installed is one package.installed_packages row.
type installed struct {
	name, version, publisher string
	date                     time.Time
}

// packages calls fn for each package installed on device i.
func (f *Fleet) packages(i uint32, d *device, now time.Time, fn func(installed) error) error {
	r := rng{hash(f.seed, uint64(i), 43)}
	day := func() time.Time { return ago(now, uint32(r.between(20, 700))*86400) }
	switch d.office {
	case office365:
		v := office365Versions[r.intn(len(office365Versions))]
		if err := fn(installed{"Microsoft 365", v, "Microsoft Corporation", day()}); err != nil {
			return err
		}
	case office2016:
		if err := fn(installed{"Microsoft Office", "16.0.4266.1001", "Microsoft Corporation", day()}); err != nil {
			return err
		}
	case officeOutdated:
		if err := fn(installed{"Microsoft 365", "15.0.4569", "Microsoft Corporation", day()}); err != nil {
			return err
		}
	case officeRepaired:
		if err := fn(installed{"Microsoft 365", officeCurrentVersion, "Microsoft Corporation", ago(now, 3600)}); err != nil {
			return err
		}
	}
	if d.mac {
		if err := fn(installed{"Microsoft Outlook", "16.88", "Microsoft Corporation", day()}); err != nil {
			return err
		}
	}
	for _, p := range commonPackages {
		if (d.mac && !p.mac) || (!d.mac && !p.windows) || !r.chance(p.share) {
			continue
		}
		v := p.versions[r.intn(len(p.versions))]
		if err := fn(installed{p.name, v, p.publisher, day()}); err != nil {
			return err
		}
	}
	return nil
}

// perfSample is one device_performance.events row.
type perfSample struct {
	start, end     time.Time
	free, capacity int64
	cpu, memory    float64
}

// perfHistory is how far back performance events go.
const perfHistory = 7 * 24

// perf calls fn for each hourly performance event of device i within [from, to),
// newest first, over the seven days before its last_seen.
func (f *Fleet) perf(i uint32, d *device, now, from, to time.Time, fn func(perfSample) error) error {
	last := ago(now, d.lastSeenAgo)
	capBytes := int64(d.capGB) * 1_000_000_000
	for s := range perfHistory {
		end := last.Add(-time.Duration(s) * time.Hour)
		if !to.IsZero() && !end.Before(to) {
			continue
		}
		if !from.IsZero() && end.Before(from) {
			break
		}
		if now.Sub(end) > retention {
			break
		}
		r := rng{hash(f.seed, uint64(i), 47, uint64(s))}
		free := int64(d.freeMB)*1_000_000 + int64(r.between(-300, 300))*1_000_000
		free = min(max(free, 500_000_000), capBytes)
		p := perfSample{
			start: end.Add(-time.Hour), end: end, free: free, capacity: capBytes,
			cpu:    float64(r.between(20, 700)) / 10,
			memory: float64(r.between(300, 900)) / 10,
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// crash is one execution.crashes row.
type crash struct {
	time time.Time
	n    int64
	p    crashProfile
}

// crashes calls fn for each crash event of device i.
func (f *Fleet) crashes(i uint32, d *device, now time.Time, fn func(crash) error) error {
	if d.crash == 0 {
		return nil
	}
	r := rng{hash(f.seed, uint64(i), 53)}
	n := r.between(1, 4)
	scenario := int(i) < len(f.scenarios)
	if scenario {
		n = 3
	}
	for range n {
		age := d.lastSeenAgo + uint32(r.between(600, 5*86400))
		if scenario {
			age = d.lastSeenAgo + uint32(r.between(600, 2*86400))
		}
		if time.Duration(age)*time.Second > retention {
			continue
		}
		if err := fn(crash{ago(now, age), int64(r.between(1, 3)), crashProfiles[d.crash]}); err != nil {
			return err
		}
	}
	return nil
}
