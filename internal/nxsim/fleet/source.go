package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// in reports whether t is in [from, to); zero bounds are open.
func in(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// checkEvery is how many rows a scan emits between context checks.
const checkEvery = 1024

// Scan calls fn for each row of table whose time field is in [from, to) (zero bounds
// are open). It implements the Scan of nql.Source.
func (f *Fleet) Scan(ctx context.Context, table string, from, to time.Time, fn func(Row) error) error {
	now := f.now()
	switch table {
	case "devices":
		return f.eachDevice(ctx, now, func(r *deviceRow) error {
			if !in(ago(now, r.d.lastSeenAgo), from, to) {
				return nil
			}
			return fn(r)
		})
	case "users":
		for u := range f.nUsers {
			if u%checkEvery == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fn(&userRow{f, uint32(u)}); err != nil {
				return err
			}
		}
		return nil
	case "remote_action.executions":
		f.mu.RLock()
		execs := append([]*Execution(nil), f.execs...)
		f.mu.RUnlock()
		devs := map[int]*deviceRow{}
		for _, e := range execs {
			if !in(e.Time, from, to) {
				continue
			}
			dr := devs[e.Device]
			if dr == nil {
				dr = f.deviceRow(uint32(e.Device), now)
				devs[e.Device] = dr
			}
			if err := fn(&execRow{dr, e}); err != nil {
				return err
			}
		}
		return nil
	case "alert.alerts":
		for _, a := range f.alertsSnapshot() {
			if !in(a.TriggerTime, from, to) {
				continue
			}
			if err := fn(f.alertRow(a, now)); err != nil {
				return err
			}
		}
		return nil
	case "session.events", "package.installed_packages", "device_performance.events", "execution.crashes":
		return f.eachDevice(ctx, now, func(r *deviceRow) error {
			return f.related(r, table, from, to, fn)
		})
	}
	return fmt.Errorf("scan %q: no such table", table)
}

func (f *Fleet) eachDevice(ctx context.Context, now time.Time, fn func(*deviceRow) error) error {
	for i := range f.devs {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(f.deviceRow(uint32(i), now)); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) alertsSnapshot() []*Alert {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]*Alert(nil), f.alerts...)
}

func (f *Fleet) alertRow(a *Alert, now time.Time) *alertRow {
	r := &alertRow{a: a}
	if a.Device >= 0 && a.Device < len(f.devs) {
		r.dev = f.deviceRow(uint32(a.Device), now)
	}
	if a.User >= 0 && a.User < f.nUsers {
		r.user = &userRow{f, uint32(a.User)}
	}
	return r
}

// Related calls fn for each row of an event or inventory table linked to obj, a row
// of devices or users that this fleet returned. It implements nql.Source's Related.
func (f *Fleet) Related(ctx context.Context, obj Row, table string, from, to time.Time, fn func(Row) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch o := obj.(type) {
	case *deviceRow:
		return f.related(o, table, from, to, fn)
	case *userRow:
		return f.relatedToUser(o, table, from, to, fn)
	}
	return fmt.Errorf("related %q: row of type %T is not a device or a user", table, obj)
}

func (f *Fleet) related(dr *deviceRow, table string, from, to time.Time, fn func(Row) error) error {
	d := &dr.d
	switch table {
	case "session.events":
		users := map[uint32]*userRow{}
		return f.sessions(dr.i, d, dr.now, func(s session) error {
			if !in(s.end, from, to) {
				return nil
			}
			ur := users[s.user]
			if ur == nil {
				ur = &userRow{f, s.user}
				users[s.user] = ur
			}
			return fn(&sessionRow{dr, ur, s})
		})
	case "package.installed_packages":
		return f.packages(dr.i, d, dr.now, func(p installed) error { return fn(&packageRow{dr, p}) })
	case "device_performance.events":
		return f.perf(dr.i, d, dr.now, from, to, func(p perfSample) error { return fn(&perfRow{dr, p}) })
	case "execution.crashes":
		ur := &userRow{f, d.users[0]}
		return f.crashes(dr.i, d, dr.now, func(c crash) error {
			if !in(c.time, from, to) {
				return nil
			}
			return fn(&crashRow{dr, ur, c})
		})
	case "remote_action.executions":
		f.mu.RLock()
		var execs []*Execution
		for _, e := range f.execs {
			if e.Device == int(dr.i) && in(e.Time, from, to) {
				execs = append(execs, e)
			}
		}
		f.mu.RUnlock()
		for _, e := range execs {
			if err := fn(&execRow{dr, e}); err != nil {
				return err
			}
		}
		return nil
	case "alert.alerts":
		for _, a := range f.alertsSnapshot() {
			if a.Device == int(dr.i) && in(a.TriggerTime, from, to) {
				if err := fn(f.alertRow(a, dr.now)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return fmt.Errorf("related %q: not linked to devices", table)
}

func (f *Fleet) relatedToUser(ur *userRow, table string, from, to time.Time, fn func(Row) error) error {
	now := f.now()
	devs := f.userDevs[f.userDevOff[ur.u]:f.userDevOff[ur.u+1]]
	switch table {
	case "session.events":
		for _, i := range devs {
			dr := f.deviceRow(i, now)
			err := f.sessions(i, &dr.d, now, func(s session) error {
				if s.user != ur.u || !in(s.end, from, to) {
					return nil
				}
				return fn(&sessionRow{dr, ur, s})
			})
			if err != nil {
				return err
			}
		}
		return nil
	case "execution.crashes":
		for _, i := range devs {
			dr := f.deviceRow(i, now)
			if dr.d.users[0] != ur.u {
				continue
			}
			err := f.crashes(i, &dr.d, now, func(c crash) error {
				if !in(c.time, from, to) {
					return nil
				}
				return fn(&crashRow{dr, ur, c})
			})
			if err != nil {
				return err
			}
		}
		return nil
	case "alert.alerts":
		for _, a := range f.alertsSnapshot() {
			if a.User == int(ur.u) && in(a.TriggerTime, from, to) {
				if err := fn(f.alertRow(a, now)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return fmt.Errorf("related %q: not linked to users", table)
}

// Lookup returns the rows of table whose field equals one of values, and false when
// the field is not indexed. It implements nql.Indexer.
func (f *Fleet) Lookup(_ context.Context, table, field string, values []string) ([]Row, bool) {
	now := f.now()
	var out []Row
	switch table + "|" + field {
	case "devices|device.name", "devices|device.collector.uid":
		seen := map[int]bool{}
		for _, v := range values {
			var i int
			var ok bool
			if field == "device.name" {
				i, ok = f.DeviceByName(v)
			} else {
				i, ok = f.DeviceByCollectorUID(v)
			}
			if ok && !seen[i] {
				seen[i] = true
				out = append(out, f.deviceRow(uint32(i), now))
			}
		}
		return out, true
	case "users|user.name", "users|user.upn", "users|user.ad.email_address", "users|user.sid":
		seen := map[uint32]bool{}
		for _, v := range values {
			if u, ok := f.userBy(field, v); ok && !seen[u] {
				seen[u] = true
				out = append(out, &userRow{f, u})
			}
		}
		return out, true
	case "remote_action.executions|remote_action.executions.request_id":
		f.mu.RLock()
		var execs []*Execution
		for _, v := range values {
			for _, h := range f.byReq[strings.ToLower(v)] {
				execs = append(execs, f.execs[h])
			}
		}
		f.mu.RUnlock()
		devs := map[int]*deviceRow{}
		for _, e := range execs {
			dr := devs[e.Device]
			if dr == nil {
				dr = f.deviceRow(uint32(e.Device), now)
				devs[e.Device] = dr
			}
			out = append(out, &execRow{dr, e})
		}
		return out, true
	}
	return nil, false
}

// userBy finds a user by one of the indexed users fields.
func (f *Fleet) userBy(field, v string) (uint32, bool) {
	switch field {
	case "user.name":
		return f.userByName(v)
	case "user.sid":
		return f.userBySID(v)
	}
	return f.userByUPN(v)
}

// LookupRelated returns the devices a user, found by an indexed users field, has
// used: a superset of those with a session or crash of theirs. It implements
// nql.RelatedIndexer.
func (f *Fleet) LookupRelated(_ context.Context, table, related, field string, values []string) ([]Row, bool) {
	if table != "devices" || related != "session.events" && related != "execution.crashes" {
		return nil, false
	}
	switch field {
	case "user.name", "user.upn", "user.ad.email_address", "user.sid":
	default:
		return nil, false
	}
	now := f.now()
	var out []Row
	seen := map[uint32]bool{}
	for _, v := range values {
		u, ok := f.userBy(field, v)
		if !ok {
			continue
		}
		for _, i := range f.userDevs[f.userDevOff[u]:f.userDevOff[u+1]] {
			if !seen[i] {
				seen[i] = true
				out = append(out, f.deviceRow(i, now))
			}
		}
	}
	return out, true
}
