package nql

import "strings"

// FieldType is the type of a field as the schema declares it.
type FieldType int

// Field types. TypeAny is for values whose type only the Source knows (remote-action
// outputs): they compare as strings or numbers depending on what the Source gives.
const (
	TypeAny FieldType = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
	TypeDateTime
)

func (t FieldType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeBool:
		return "bool"
	case TypeDateTime:
		return "datetime"
	}
	return "any"
}

// TableKind says how a table relates to the objects of the data model.
type TableKind int

// Table kinds: object tables (devices, users) hold one row per object; event tables
// hold timestamped rows linked to objects; inventory tables link objects without a
// time of their own (installed packages).
const (
	KindObject TableKind = iota
	KindEvent
	KindInventory
)

// Field is one field of a table or object, fully qualified.
type Field struct {
	Name string
	Type FieldType
}

// Object is an object of the data model that tables link to (device, user, package,
// binary, application, remote_action); its fields are qualified by its name.
type Object struct {
	Name   string
	Fields []Field

	types map[string]FieldType
}

// Table is a table a query can start from or join.
type Table struct {
	Name string
	Kind TableKind
	// Object is the object an object table lists ("device" for devices), else "".
	Object string
	// Prefix qualifies the table's own short field names ("device", "session.events").
	Prefix string
	// TimeField is the field timeframes filter on, "" when the table has none.
	TimeField string
	// Links are the objects each row links to, by object name.
	Links []string
	// Fields are the table's own fields, fully qualified.
	Fields []Field
	// Defaults are the fields a query without `list` returns.
	Defaults []string

	types map[string]FieldType
}

// Schema is the data model queries are compiled against. It is not modified after
// construction and is safe for concurrent use.
type Schema struct {
	tables  map[string]*Table
	aliases map[string]string // other spellings of table names
	objects map[string]*Object
}

// Table returns the table called name (or one of its documented spellings such as
// "device.devices").
func (s *Schema) Table(name string) (*Table, bool) {
	if canon, ok := s.aliases[name]; ok {
		name = canon
	}
	t, ok := s.tables[name]
	return t, ok
}

// IsDeviceField reports whether field is a fully qualified plain field of the devices
// table, one a cache of device fields can hold: the schema's and the tenant's dynamic
// fields (IsDynamicField), not remote_action.* fields.
func (s *Schema) IsDeviceField(field string) bool {
	t, ok := s.tables["devices"]
	if !ok {
		return false
	}
	_, ok = t.types[field]
	return ok || IsDynamicField(field)
}

// DefaultSchema returns the data model of the NQL subset.
//
// Table, field and link names follow Nexthink's NQL data model documentation. Where
// Nexthink does not document a detail, the choice is ours: which fields each table
// exposes in this subset, their types (sizes in bytes as int, times as datetime,
// remote-action outputs untyped), the time field of each event table, request_id on
// remote_action.executions (inferred from workflow.executions), and the default fields
// a query without `list` returns.
func DefaultSchema() *Schema {
	s := &Schema{
		tables: map[string]*Table{},
		aliases: map[string]string{
			"device.devices": "devices",
			"user.users":     "users",
		},
		objects: map[string]*Object{},
	}
	str, i, f, dt := TypeString, TypeInt, TypeFloat, TypeDateTime

	devices := &Table{
		Name: "devices", Kind: KindObject, Object: "device", Prefix: "device",
		TimeField: "device.last_seen",
		Fields: fields("device",
			"name", str, "uid", str, "collector.uid", str, "entity", str,
			"operating_system.platform", str, "operating_system.name", str,
			"operating_system.version", str, "hardware.type", str,
			"hardware.manufacturer", str, "hardware.model", str, "hardware.memory", i,
			"last_seen", dt, "boot.days_since_last_full_boot", i,
			"boot.last_full_boot_time", dt, "login.last_login_user_name", str,
			"login.last_login_time", dt),
		Defaults: []string{"device.name", "device.collector.uid", "device.entity",
			"device.operating_system.platform", "device.operating_system.name",
			"device.hardware.type", "device.last_seen"},
	}
	users := &Table{
		Name: "users", Kind: KindObject, Object: "user", Prefix: "user",
		Fields: fields("user",
			"name", str, "uid", str, "upn", str, "sid", str, "ad.email_address", str,
			"ad.full_name", str, "ad.department", str),
		Defaults: []string{"user.name", "user.upn", "user.sid", "user.ad.email_address",
			"user.ad.full_name", "user.ad.department"},
	}
	s.addTable(devices)
	s.addTable(users)
	s.addObject(&Object{Name: "device", Fields: devices.Fields})
	s.addObject(&Object{Name: "user", Fields: users.Fields})
	s.addObject(&Object{Name: "package", Fields: fields("package",
		"name", str, "version", str, "publisher", str)})
	s.addObject(&Object{Name: "binary", Fields: fields("binary", "name", str)})
	s.addObject(&Object{Name: "application", Fields: fields("application", "name", str)})
	s.addObject(&Object{Name: "remote_action", Fields: fields("remote_action",
		"name", str, "nql_id", str)})

	s.addTable(&Table{
		Name: "session.events", Kind: KindEvent, Prefix: "session.events",
		TimeField: "session.events.end_time", Links: []string{"device", "user"},
		Fields: fields("session.events",
			"start_time", dt, "end_time", dt, "user_interaction_time", i),
		Defaults: []string{"device.name", "user.name", "session.events.start_time",
			"session.events.end_time", "session.events.user_interaction_time"},
	})
	s.addTable(&Table{
		Name: "package.installed_packages", Kind: KindInventory,
		Prefix: "package.installed_packages", Links: []string{"device", "package"},
		Fields: fields("package.installed_packages", "installation_date", dt),
		Defaults: []string{"device.name", "package.name", "package.version",
			"package.publisher", "package.installed_packages.installation_date"},
	})
	s.addTable(&Table{
		Name: "device_performance.events", Kind: KindEvent,
		Prefix:    "device_performance.events",
		TimeField: "device_performance.events.end_time", Links: []string{"device"},
		Fields: fields("device_performance.events",
			"start_time", dt, "end_time", dt, "system_drive_free_space", i,
			"system_drive_capacity", i, "cpu_usage", f, "memory_usage", f),
		Defaults: []string{"device.name", "device_performance.events.start_time",
			"device_performance.events.end_time",
			"device_performance.events.system_drive_free_space",
			"device_performance.events.system_drive_capacity",
			"device_performance.events.cpu_usage", "device_performance.events.memory_usage"},
	})
	s.addTable(&Table{
		Name: "execution.crashes", Kind: KindEvent, Prefix: "execution.crashes",
		TimeField: "execution.crashes.time",
		Links:     []string{"device", "user", "binary", "application"},
		Fields:    fields("execution.crashes", "time", dt, "number_of_crashes", i),
		Defaults: []string{"device.name", "user.name", "binary.name", "application.name",
			"execution.crashes.time", "execution.crashes.number_of_crashes"},
	})
	s.addTable(&Table{
		Name: "remote_action.executions", Kind: KindEvent,
		Prefix: "remote_action.executions", TimeField: "remote_action.executions.time",
		Links: []string{"device", "remote_action"},
		Fields: fields("remote_action.executions",
			"request_id", str, "status", str, "status_details", str, "outputs", str,
			"inputs", str, "time", dt, "purpose", str, "trigger_method", str,
			"external_source", str, "external_reference", str),
		Defaults: []string{"remote_action.executions.request_id", "device.name",
			"device.collector.uid", "remote_action.name", "remote_action.nql_id",
			"remote_action.executions.status", "remote_action.executions.status_details",
			"remote_action.executions.outputs", "remote_action.executions.time",
			"remote_action.executions.purpose", "remote_action.executions.trigger_method"},
	})
	// Nexthink's webhook documentation spells some alert fields without the "alert."
	// prefix (trigger_time, monitor.priority): the prefix rule of short names covers it.
	s.addTable(&Table{
		Name: "alert.alerts", Kind: KindEvent, Prefix: "alert",
		TimeField: "alert.trigger_time", Links: []string{"device", "user"},
		Fields: fields("alert",
			"monitor.name", str, "status", str, "context", str, "trigger_time", dt,
			"recovery_time", dt, "monitor.priority", str, "monitor.tags", str),
		Defaults: []string{"alert.monitor.name", "alert.status", "device.name",
			"user.name", "alert.trigger_time", "alert.recovery_time",
			"alert.monitor.priority", "alert.monitor.tags", "alert.context"},
	})
	return s
}

// fields builds qualified fields from (short name, type) pairs.
func fields(prefix string, pairs ...any) []Field {
	out := make([]Field, 0, len(pairs)/2)
	for k := 0; k+1 < len(pairs); k += 2 {
		out = append(out, Field{Name: prefix + "." + pairs[k].(string), Type: pairs[k+1].(FieldType)})
	}
	return out
}

func (s *Schema) addTable(t *Table) {
	t.types = make(map[string]FieldType, len(t.Fields))
	for _, f := range t.Fields {
		t.types[f.Name] = f.Type
	}
	s.tables[t.Name] = t
}

func (s *Schema) addObject(o *Object) {
	o.types = make(map[string]FieldType, len(o.Fields))
	for _, f := range o.Fields {
		o.types[f.Name] = f.Type
	}
	s.objects[o.Name] = o
}

// resolved is a field name resolved against a table.
type resolved struct {
	name   string    // canonical name, as Row.Value receives it
	typ    FieldType //
	object string    // linked object the field belongs to, "" for the table's own fields
}

// resolveIn resolves a written field name against table t: a fully qualified own
// field, a field of a linked object, a short name under the table's prefix, or (on
// devices) a remote_action.<id>.execution.* field.
func (s *Schema) resolveIn(t *Table, name string) (resolved, bool) {
	if t.Object == "device" {
		if canon, typ, ok := remoteActionField(name); ok {
			return resolved{name: canon, typ: typ, object: "device"}, true
		}
		for _, n := range []string{name, "device." + name} {
			if IsDynamicField(n) {
				return resolved{name: n, typ: TypeAny, object: "device"}, true
			}
		}
	}
	if typ, ok := t.types[name]; ok {
		return resolved{name: name, typ: typ, object: t.Object}, true
	}
	for _, l := range t.Links {
		o := s.objects[l]
		if o == nil || !strings.HasPrefix(name, l+".") {
			continue
		}
		if typ, ok := o.types[name]; ok {
			return resolved{name: name, typ: typ, object: l}, true
		}
	}
	if t.Prefix != "" {
		q := t.Prefix + "." + name
		if typ, ok := t.types[q]; ok {
			return resolved{name: q, typ: typ, object: t.Object}, true
		}
	}
	return resolved{}, false
}

// remoteActionField recognises remote_action.<nql_id>.execution.(status|status_details|
// time|outputs.<Name>), optionally written with a "device." prefix, and returns its
// canonical name (without the prefix). Written by hand: it runs at compile time only,
// but a regexp would be package state or a compilation per call.
func remoteActionField(name string) (string, FieldType, bool) {
	name = strings.TrimPrefix(name, "device.")
	rest, ok := strings.CutPrefix(name, "remote_action.")
	if !ok {
		return "", 0, false
	}
	id, rest, ok := strings.Cut(rest, ".")
	if !ok || id == "" || !allBytes(id, isLowerIDByte) {
		return "", 0, false
	}
	rest, ok = strings.CutPrefix(rest, "execution.")
	if !ok {
		return "", 0, false
	}
	switch rest {
	case "time":
		return name, TypeDateTime, true
	case "status", "status_details":
		return name, TypeAny, true
	}
	out, ok := strings.CutPrefix(rest, "outputs.")
	if !ok || out == "" || !allBytes(out, isIDByte) {
		return "", 0, false
	}
	return name, TypeAny, true
}

// IsDynamicField reports whether name is a device field the tenant defines, which
// no schema can list: a custom field device.#<name> (Infinity's manual and
// rule-based custom fields, V6's categories) or a score device.score.<name>, with
// its sub-scores as device.score.<name>.<sub>. Their type is whatever the tenant
// gave them (TypeAny).
func IsDynamicField(name string) bool {
	if rest, ok := strings.CutPrefix(name, "device.#"); ok {
		return rest != "" && allBytes(rest, isIDByte)
	}
	rest, ok := strings.CutPrefix(name, "device.score.")
	if !ok {
		return false
	}
	for _, seg := range strings.Split(rest, ".") {
		if seg == "" || !allBytes(seg, isIDByte) {
			return false
		}
	}
	return true
}

func allBytes(s string, ok func(byte) bool) bool {
	for k := 0; k < len(s); k++ {
		if !ok(s[k]) {
			return false
		}
	}
	return true
}

func isLowerIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

func isIDByte(c byte) bool {
	return isLowerIDByte(c) || c >= 'A' && c <= 'Z'
}

// FieldType is the type of a fully qualified field of a table or object of the
// schema, or of a remote_action.<id>.execution.* field; ok is false for a name the
// schema does not declare (a computed column).
func (s *Schema) FieldType(name string) (typ FieldType, ok bool) {
	if _, t, ok := remoteActionField(name); ok {
		return t, true
	}
	if IsDynamicField(name) {
		return TypeAny, true
	}
	for _, t := range s.tables {
		if typ, ok := t.types[name]; ok {
			return typ, true
		}
	}
	for _, o := range s.objects {
		if typ, ok := o.types[name]; ok {
			return typ, true
		}
	}
	return TypeAny, false
}
