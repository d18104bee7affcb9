package fleet

import (
	"encoding/json"
	"strings"
	"time"
)

// Row is one row of a table, answering fully qualified field names; nql.Row has the
// same method set, so a Row is an nql.Row.
type Row interface {
	Value(field string) any
}

// deviceRow is a devices row: a copy of the device taken when the row was made.
type deviceRow struct {
	f   *Fleet
	now time.Time
	i   uint32
	d   device
	ex  *deviceExecs
}

func (f *Fleet) deviceRow(i uint32, now time.Time) *deviceRow {
	d, ex := f.snapshot(i)
	return &deviceRow{f: f, now: now, i: i, d: d, ex: ex}
}

func (r *deviceRow) Value(field string) any {
	d := &r.d
	switch field {
	case "device.name":
		return r.f.deviceName(r.i)
	case "device.uid":
		return r.f.uuidFor(saltDeviceUID, r.i)
	case "device.collector.uid":
		return r.f.uuidFor(saltCollector, r.i)
	case "device.entity":
		return entities[d.entity]
	case "device.operating_system.platform":
		return d.osInfo().platform
	case "device.operating_system.name":
		return d.osInfo().name
	case "device.operating_system.version":
		return d.osInfo().version
	case "device.hardware.type":
		return models[d.model].kind
	case "device.hardware.manufacturer":
		return models[d.model].manufacturer
	case "device.hardware.model":
		return models[d.model].name
	case "device.hardware.memory":
		return int64(d.memGB) << 30
	case "device.last_seen":
		return ago(r.now, d.lastSeenAgo)
	case "device.boot.days_since_last_full_boot":
		// As the collector last reported it.
		return int64((d.bootAgo - min(d.lastSeenAgo, d.bootAgo)) / 86400)
	case "device.boot.last_full_boot_time":
		return ago(r.now, d.bootAgo)
	case "device.login.last_login_user_name":
		return r.f.userName(d.users[0])
	case "device.login.last_login_time":
		return ago(r.now, d.loginAgo)
	case FieldLocation:
		return entities[d.entity]
	case FieldDepartment:
		return r.f.userDepartment(d.users[0])
	case FieldHealthScore:
		return r.healthScore()
	case FieldRestartScore:
		return restartScore(&r.d)
	}
	if rest, ok := strings.CutPrefix(strings.TrimPrefix(field, "device."), "remote_action."); ok {
		return r.actionValue(rest)
	}
	return nil
}

// The fleet's tenant-defined device fields ("dynamic fields"): two categories (custom
// fields in Infinity's terms) and a score with one of its sub-scores, named as NQL
// names them. Their values derive from the device, so they follow the seed.
const (
	FieldLocation     = "device.#location"   // the device's site (its entity)
	FieldDepartment   = "device.#department" // its main user's department
	FieldHealthScore  = "device.score.device_health"
	FieldRestartScore = "device.score.device_health.restart"
)

// DynamicFields lists the fleet's tenant-defined device fields.
func DynamicFields() []string {
	return []string{FieldDepartment, FieldLocation, FieldHealthScore, FieldRestartScore}
}

// healthScore is the score "Device health": 10, less 3 when the device has not
// restarted for more than 10 days (its restart sub-score), 2 with less than 8 GB of
// memory and 2 when it has not reported for more than a day.
func (r *deviceRow) healthScore() float64 {
	score := restartScore(&r.d)
	if r.d.memGB < 8 {
		score -= 2
	}
	if r.d.lastSeenAgo > 86400 {
		score -= 2
	}
	return score
}

// restartScore is the sub-score "Device health/Restart": 10, or 7 when the device
// has not restarted for more than 10 days (as the collector last reported it).
func restartScore(d *device) float64 {
	if (d.bootAgo-min(d.lastSeenAgo, d.bootAgo))/86400 > 10 {
		return 7
	}
	return 10
}

// actionValue answers <nql_id>.execution.(status|status_details|time|outputs.<Name>).
func (r *deviceRow) actionValue(rest string) any {
	id, rest, ok := strings.Cut(rest, ".execution.")
	if !ok {
		return nil
	}
	k := dataActionIndex(id)
	if k < 0 || r.d.mac {
		return nil
	}
	// The scheduled collection happened once, at a fixed time: unlike last_seen, it
	// does not move with the clock.
	le := &lastExec{StatusSuccess, detailsSuccess, ago(r.f.epoch, r.d.dcAgo)}
	if r.ex != nil && r.ex[k] != nil {
		le = r.ex[k]
	}
	switch rest {
	case "status":
		return le.status
	case "status_details":
		return le.details
	case "time":
		return le.time
	}
	out, ok := strings.CutPrefix(rest, "outputs.")
	if !ok || le.status != StatusSuccess {
		return nil
	}
	return outputValue(&r.d, k, out)
}

// userRow is a users row.
type userRow struct {
	f *Fleet
	u uint32
}

func (r *userRow) Value(field string) any {
	switch field {
	case "user.name":
		return r.f.userName(r.u)
	case "user.uid":
		return r.f.uuidFor(saltUserUID, r.u)
	case "user.upn", "user.ad.email_address":
		return r.f.userUPN(r.u)
	case "user.sid":
		return r.f.userSID(r.u)
	case "user.ad.full_name":
		return r.f.userFullName(r.u)
	case "user.ad.department":
		return r.f.userDepartment(r.u)
	}
	return nil
}

// linked answers a linked device's or user's fields for event rows.
func linked(field string, dev *deviceRow, user *userRow) (any, bool) {
	switch {
	case dev != nil && strings.HasPrefix(field, "device."):
		return dev.Value(field), true
	case user != nil && strings.HasPrefix(field, "user."):
		return user.Value(field), true
	}
	return nil, false
}

type sessionRow struct {
	dev  *deviceRow
	user *userRow
	s    session
}

func (r *sessionRow) Value(field string) any {
	switch field {
	case "session.events.start_time":
		return r.s.start
	case "session.events.end_time":
		return r.s.end
	case "session.events.user_interaction_time":
		return r.s.interactionSeconds
	}
	v, _ := linked(field, r.dev, r.user)
	return v
}

type packageRow struct {
	dev *deviceRow
	p   installed
}

func (r *packageRow) Value(field string) any {
	switch field {
	case "package.name":
		return r.p.name
	case "package.version":
		return r.p.version
	case "package.publisher":
		return r.p.publisher
	case "package.installed_packages.installation_date":
		return r.p.date
	}
	v, _ := linked(field, r.dev, nil)
	return v
}

type perfRow struct {
	dev *deviceRow
	p   perfSample
}

func (r *perfRow) Value(field string) any {
	switch field {
	case "device_performance.events.start_time":
		return r.p.start
	case "device_performance.events.end_time":
		return r.p.end
	case "device_performance.events.system_drive_free_space":
		return r.p.free
	case "device_performance.events.system_drive_capacity":
		return r.p.capacity
	case "device_performance.events.cpu_usage":
		return r.p.cpu
	case "device_performance.events.memory_usage":
		return r.p.memory
	}
	v, _ := linked(field, r.dev, nil)
	return v
}

type crashRow struct {
	dev  *deviceRow
	user *userRow
	c    crash
}

func (r *crashRow) Value(field string) any {
	switch field {
	case "execution.crashes.time":
		return r.c.time
	case "execution.crashes.number_of_crashes":
		return r.c.n
	case "binary.name":
		return r.c.p.binary
	case "application.name":
		return r.c.p.application
	}
	v, _ := linked(field, r.dev, r.user)
	return v
}

type execRow struct {
	dev *deviceRow
	e   *Execution
}

func (r *execRow) Value(field string) any {
	e := r.e
	switch field {
	case "remote_action.executions.request_id":
		return e.RequestID
	case "remote_action.executions.status":
		return e.Status
	case "remote_action.executions.status_details":
		return e.StatusDetails
	case "remote_action.executions.outputs":
		if e.Outputs == nil {
			return nil
		}
		return jsonString(e.Outputs)
	case "remote_action.executions.inputs":
		return jsonString(e.Inputs)
	case "remote_action.executions.time":
		return e.Time
	case "remote_action.executions.purpose":
		return e.Purpose
	case "remote_action.executions.trigger_method":
		return "api"
	case "remote_action.executions.external_source":
		return e.ExternalSource
	case "remote_action.executions.external_reference":
		return e.ExternalReference
	case "remote_action.name":
		return e.ActionName
	case "remote_action.nql_id":
		return e.ActionID
	}
	v, _ := linked(field, r.dev, nil)
	return v
}

// jsonString encodes a map as a JSON object ("{}" when empty).
func jsonString[V any](m map[string]V) string {
	if m == nil {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

type alertRow struct {
	dev  *deviceRow
	user *userRow
	a    *Alert
}

func (r *alertRow) Value(field string) any {
	a := r.a
	switch field {
	case "alert.monitor.name":
		return a.Monitor
	case "alert.status":
		return a.Status
	case "alert.context":
		return a.Context
	case "alert.trigger_time":
		return a.TriggerTime
	case "alert.recovery_time":
		if a.RecoveryTime.IsZero() {
			return nil
		}
		return a.RecoveryTime
	case "alert.monitor.priority":
		return a.Priority
	case "alert.monitor.tags":
		return a.Tags
	}
	v, _ := linked(field, r.dev, r.user)
	return v
}
