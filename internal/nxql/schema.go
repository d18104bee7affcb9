package nxql

import (
	"sort"
	"strings"
)

// Type is the type of a field or of a literal value.
type Type int

// Field and value types. Enumerations are tokens (windows, mac_os, laptop,
// success); patterns are only values, compared with eq and ne.
const (
	TypeString Type = iota + 1
	TypeInteger
	TypeReal
	TypeBoolean
	TypeEnum
	TypeDateTime
	TypePattern
	// TypeAny is a remote-action output: its type is whatever the device reported,
	// so it compares with string, integer, real and pattern values.
	TypeAny
)

var typeNames = map[string]Type{
	"string": TypeString, "integer": TypeInteger, "real": TypeReal, "boolean": TypeBoolean,
	"enum": TypeEnum, "datetime": TypeDateTime, "pattern": TypePattern,
}

func (t Type) String() string {
	for k, v := range typeNames {
		if v == t {
			return k
		}
	}
	if t == TypeAny {
		return "any"
	}
	return "unknown"
}

// Kind says whether a table lists objects or events.
type Kind int

// Table kinds.
const (
	KindObject Kind = iota + 1
	KindEvent
)

// Field is a field of a table: its NXQL name, type, and the fleet field (the
// fully qualified NQL name the data source answers) it reads.
type Field struct {
	Name   string
	Type   Type
	Source string
	// Enum maps the source's value to the enumeration token, when Type is TypeEnum.
	Enum map[string]string
}

// Aggregate is a value computed per object over the events of a with clause.
type Aggregate struct {
	Name  string
	Type  Type
	Func  string // count, sum, avg, max
	Field string // source field it reads ("" for count)
}

// Table is an NXQL table (object or event).
type Table struct {
	Name   string
	Kind   Kind
	Source string // the fleet table it reads: devices, session.events, ...
	// TimeField is the source field between filters on (events only).
	TimeField string
	// Links are the object tables an event links to (device, user, package, ...).
	Links      []string
	Fields     []Field
	Aggregates []Aggregate
	// Key are the source fields that identify one object (objects only).
	Key []string
	// Platform is the source field holding the device platform, used by the
	// platform parameter; "" when the table does not depend on a device.
	Platform string
	// Dynamic fields (custom fields, categories, scores, remote-action fields)
	// start with '#'; only devices have them.
	dynamic bool
	byName  map[string]*Field
	aggs    map[string]*Aggregate
}

// Schema is the data model of the NXQL subset. It is read-only after
// NewSchema and safe for concurrent use.
type Schema struct {
	tables map[string]*Table
}

// platformEnum maps the fleet's platform names to NXQL's platform tokens.
var platformEnum = map[string]string{"Windows": "windows", "macOS": "mac_os"}

// deviceTypeEnum maps the fleet's hardware types to NXQL's device_type tokens.
var deviceTypeEnum = map[string]string{"laptop": "laptop", "desktop": "desktop", "virtual": "virtual"}

// statusEnum: remote-action execution statuses are already tokens.
var statusEnum = map[string]string{"pending": "pending", "in_progress": "in_progress",
	"waiting_for_device": "waiting_for_device", "success": "success", "failure": "failure",
	"expired": "expired", "cancelled": "cancelled"}

var purposeEnum = map[string]string{"data_collection": "data_collection", "remediation": "remediation"}

// NewSchema returns the data model nxsim's Engines answer. Table and field names
// follow Nexthink's V6 NXQL data model where it is known (see the package
// documentation for which are documented and which are nxsim's choice).
func NewSchema() *Schema {
	s, i, r, dt, e := TypeString, TypeInteger, TypeReal, TypeDateTime, TypeEnum
	f := func(name string, t Type, src string) Field { return Field{Name: name, Type: t, Source: src} }
	en := func(name, src string, m map[string]string) Field {
		return Field{Name: name, Type: e, Source: src, Enum: m}
	}
	device := &Table{Name: "device", Kind: KindObject, Source: "devices", Key: []string{"device.collector.uid"},
		Platform: "device.operating_system.platform", dynamic: true,
		Fields: []Field{
			f("name", s, "device.name"),
			f("device_uid", s, "device.collector.uid"),
			f("entity", s, "device.entity"),
			en("platform", "device.operating_system.platform", platformEnum),
			f("os_version_and_architecture", s, "device.operating_system.name"),
			f("os_build", s, "device.operating_system.version"),
			en("device_type", "device.hardware.type", deviceTypeEnum),
			f("device_manufacturer", s, "device.hardware.manufacturer"),
			f("device_model", s, "device.hardware.model"),
			f("total_ram", i, "device.hardware.memory"),
			f("last_seen", dt, "device.last_seen"),
			f("last_system_boot", dt, "device.boot.last_full_boot_time"),
			f("number_of_days_since_last_boot", i, "device.boot.days_since_last_full_boot"),
			f("last_logged_on_user", s, "device.login.last_login_user_name"),
			f("last_logon_time", dt, "device.login.last_login_time"),
			// The tenant's categories and scores (nxsim's fleet defines these).
			f("#Location", s, "device.#location"),
			f("#Department", s, "device.#department"),
			f("#score:Device health", r, "device.score.device_health"),
			f("#score:Device health/Restart", r, "device.score.device_health.restart"),
		}}
	user := &Table{Name: "user", Kind: KindObject, Source: "users", Key: []string{"user.name"}, Fields: []Field{
		f("name", s, "user.name"),
		f("user_uid", s, "user.uid"),
		f("upn", s, "user.upn"),
		f("sid", s, "user.sid"),
		f("email", s, "user.ad.email_address"),
		f("full_name", s, "user.ad.full_name"),
		f("department", s, "user.ad.department"),
	}}
	pkg := &Table{Name: "package", Kind: KindObject, Key: []string{"package.name", "package.version"}, Fields: []Field{
		f("name", s, "package.name"), f("version", s, "package.version"), f("publisher", s, "package.publisher"),
	}}
	binary := &Table{Name: "binary", Kind: KindObject, Key: []string{"binary.name"}, Fields: []Field{f("executable_name", s, "binary.name")}}
	application := &Table{Name: "application", Kind: KindObject, Key: []string{"application.name"}, Fields: []Field{f("name", s, "application.name")}}
	action := &Table{Name: "remote_action", Kind: KindObject, Key: []string{"remote_action.nql_id"}, Fields: []Field{
		f("name", s, "remote_action.name"), f("nql_id", s, "remote_action.nql_id"),
	}}
	dp := "device.operating_system.platform"
	session := &Table{Name: "session", Kind: KindEvent, Source: "session.events",
		TimeField: "session.events.end_time", Links: []string{"device", "user"}, Platform: dp,
		Fields: []Field{
			f("start_time", dt, "session.events.start_time"),
			f("end_time", dt, "session.events.end_time"),
			f("user_interaction_time", i, "session.events.user_interaction_time"),
		},
		Aggregates: []Aggregate{
			{Name: "number_of_sessions", Type: i, Func: "count"},
			{Name: "last_end_time", Type: dt, Func: "max", Field: "session.events.end_time"},
			{Name: "total_interaction_time", Type: i, Func: "sum", Field: "session.events.user_interaction_time"},
		}}
	installation := &Table{Name: "installation", Kind: KindEvent, Source: "package.installed_packages",
		Links: []string{"device", "package"}, Platform: dp,
		Fields: []Field{f("installation_date", dt, "package.installed_packages.installation_date")},
		Aggregates: []Aggregate{
			{Name: "number_of_packages", Type: i, Func: "count", Field: "package.name"},
		}}
	perf := &Table{Name: "device_performance", Kind: KindEvent, Source: "device_performance.events",
		TimeField: "device_performance.events.end_time", Links: []string{"device"}, Platform: dp,
		Fields: []Field{
			f("start_time", dt, "device_performance.events.start_time"),
			f("end_time", dt, "device_performance.events.end_time"),
			f("system_drive_free_space", i, "device_performance.events.system_drive_free_space"),
			f("system_drive_capacity", i, "device_performance.events.system_drive_capacity"),
			f("cpu_usage", r, "device_performance.events.cpu_usage"),
			f("memory_usage", r, "device_performance.events.memory_usage"),
		},
		Aggregates: []Aggregate{
			{Name: "number_of_samples", Type: i, Func: "count"},
			{Name: "average_cpu_usage", Type: r, Func: "avg", Field: "device_performance.events.cpu_usage"},
			{Name: "average_memory_usage", Type: r, Func: "avg", Field: "device_performance.events.memory_usage"},
			{Name: "average_system_drive_free_space", Type: r, Func: "avg", Field: "device_performance.events.system_drive_free_space"},
		}}
	crash := &Table{Name: "crash", Kind: KindEvent, Source: "execution.crashes",
		TimeField: "execution.crashes.time", Links: []string{"device", "user", "binary", "application"}, Platform: dp,
		Fields: []Field{
			f("time", dt, "execution.crashes.time"),
			f("number_of_crashes", i, "execution.crashes.number_of_crashes"),
		},
		Aggregates: []Aggregate{
			{Name: "number_of_crash_events", Type: i, Func: "count"},
			{Name: "total_number_of_crashes", Type: i, Func: "sum", Field: "execution.crashes.number_of_crashes"},
		}}
	execution := &Table{Name: "remote_action_execution", Kind: KindEvent, Source: "remote_action.executions",
		TimeField: "remote_action.executions.time", Links: []string{"device", "remote_action"}, Platform: dp,
		Fields: []Field{
			f("request_uid", s, "remote_action.executions.request_id"),
			en("status", "remote_action.executions.status", statusEnum),
			f("status_details", s, "remote_action.executions.status_details"),
			f("outputs", s, "remote_action.executions.outputs"),
			f("inputs", s, "remote_action.executions.inputs"),
			f("time", dt, "remote_action.executions.time"),
			en("purpose", "remote_action.executions.purpose", purposeEnum),
			f("external_reference", s, "remote_action.executions.external_reference"),
		},
		Aggregates: []Aggregate{{Name: "number_of_executions", Type: i, Func: "count"}}}
	sc := &Schema{tables: map[string]*Table{}}
	for _, t := range []*Table{device, user, pkg, binary, application, action, session, installation, perf, crash, execution} {
		t.byName = map[string]*Field{}
		for k := range t.Fields {
			t.byName[t.Fields[k].Name] = &t.Fields[k]
		}
		t.aggs = map[string]*Aggregate{}
		for k := range t.Aggregates {
			t.aggs[t.Aggregates[k].Name] = &t.Aggregates[k]
		}
		sc.tables[t.Name] = t
	}
	return sc
}

// Table returns the table called name.
func (s *Schema) Table(name string) (*Table, bool) {
	t, ok := s.tables[name]
	return t, ok
}

// TableNames lists the tables, sorted.
func (s *Schema) TableNames() []string {
	out := make([]string, 0, len(s.tables))
	for n := range s.tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// field resolves a field of t, including the remote-action fields of devices
// (names of dynamic fields are kept without their quotes: #"action:x/Y" is
// "#action:x/Y"): #"action:<remote action id>/<output>" reads the output of the device's last
// execution of that data-collection remote action, and the outputs status,
// status_details and time read that execution's own state.
func (t *Table) field(name string) (*Field, bool) {
	if f, ok := t.byName[name]; ok {
		return f, true
	}
	if !t.dynamic {
		return nil, false
	}
	rest, ok := strings.CutPrefix(name, "#action:")
	if !ok {
		return nil, false
	}
	id, out, ok := strings.Cut(rest, "/")
	id = strings.TrimPrefix(id, "#")
	if !ok || id == "" || out == "" || !validName(id, false) || !validName(out, true) {
		return nil, false
	}
	src := "remote_action." + id + ".execution."
	switch out {
	case "status":
		return &Field{Name: name, Type: TypeEnum, Source: src + "status", Enum: statusEnum}, true
	case "status_details":
		return &Field{Name: name, Type: TypeString, Source: src + "status_details"}, true
	case "time":
		return &Field{Name: name, Type: TypeDateTime, Source: src + "time"}, true
	}
	return &Field{Name: name, Type: TypeAny, Source: src + "outputs." + out}, true
}

func validName(s string, upper bool) bool {
	for k := 0; k < len(s); k++ {
		c := s[k]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || upper && c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// fieldNames lists the names of t's fields, for error options.
func (t *Table) fieldNames() []string {
	out := make([]string, 0, len(t.Fields)+1)
	for _, f := range t.Fields {
		out = append(out, f.Name)
	}
	if t.dynamic {
		out = append(out, `#"action:<remote action>/<output>"`)
	}
	return out
}

func (t *Table) aggregateNames() []string {
	out := make([]string, 0, len(t.Aggregates))
	for _, a := range t.Aggregates {
		out = append(out, a.Name)
	}
	return out
}
