package nql

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		q         string
		line, col int
		msg       string
	}{
		{"", 1, 1, "expected a table name, got end of query"},
		{"devices\n| where name == ", 2, 17, "unexpected end of query"},
		{"devices\n| where name = \"x\"", 2, 14, `unexpected "=" (use "==" to compare)`},
		{"devices\n| list name,\n  | sort name", 3, 3, `expected a field name, got "|"`},
		{"devices | frobnicate", 1, 11, `unknown clause "frobnicate"`},
		{"devices during 7d", 1, 16, `expected "past" after "during", got "7d"`},
		{"devices past 7y", 1, 14, `invalid number or duration "7y"`},
		{"devices past 1.5h", 1, 14, `invalid number or duration "1.5h"`},
		{"devices past week", 1, 14, `expected a duration such as 7d, 24h or 15min, got "week"`},
		{`devices | where name == "abc`, 1, 25, "unterminated string"},
		{`devices | where name == $`, 1, 25, `expected parameter name after "$"`},
		{`devices | where name in "a"`, 1, 25, `expected "[", got "a"`},
		{`devices | where name in ["a" "b"]`, 1, 30, `expected ",", got "b"`},
		{`devices | where name in [name]`, 1, 26, "expected a literal or a parameter in the list"},
		{`devices | limit x`, 1, 17, `expected a row count after "limit", got "x"`},
		{`devices | where (name == "a"`, 1, 29, `expected ")", got end of query`},
		{`devices | where name == "é" |`, 1, 30, `expected a clause after "|", got end of query`},
		{`devices | where x == 1 #`, 1, 24, `unexpected character '#'`},
		{"devices\n\t| where name == \"a\" \"b\"", 2, 22, `unexpected "b"`},
		{`devices | compute a.b = 1`, 1, 19, `computed name "a.b" must not contain "."`},
		{`devices | compute a 1`, 1, 21, `expected "=", got "1"`},
		{`devices | where name == 7d`, 1, 25, "duration 7d is only allowed in a timeframe"},
		{`devices | where count(1) > 0`, 1, 23, "aggregate functions take no arguments"},
		{"devices | where name == \"a\nb\" | frob", 2, 6, `unknown clause "frob"`},
		{`devices | with`, 1, 15, `expected a table name after "with", got end of query`},
		{`devices | where name == 99999999999999999999`, 1, 25, "integer 99999999999999999999 out of range"},
		{`devices | sort name up`, 1, 21, `unexpected "up"`},
		{`devices past 99999999999d`, 1, 14, `invalid duration "99999999999d"`},
		{"devices | where " + strings.Repeat("(", 100) + "x", 1, 81, "expression nested too deeply"},
		{"devices | where " + strings.Repeat("!", 100) + "x", 1, 80, "expression nested too deeply"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.q)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): got %v, want an *Error", tt.q, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.col || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("Parse(%q):\ngot  %d:%d %q\nwant %d:%d %q", tt.q, pe.Line, pe.Column, pe.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("devices\n| where name == \"a\"\n| where | x")
	if got, want := err.Error(), `line 3, column 9: unexpected "|"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParse(t *testing.T) {
	q, err := Parse("devices during past 15min\n| include session.events past 2h | where -x.y * 2 + 1 >= -3 and !(a !in [1, \"b\\\"c\", $p, null, true, 1.5])")
	if err != nil {
		t.Fatal(err)
	}
	if q.Table != "devices" || q.Timeframe == nil || q.Timeframe.Duration != 15*time.Minute {
		t.Fatalf("got table %q timeframe %+v, want devices past 15min", q.Table, q.Timeframe)
	}
	j, ok := q.Clauses[0].(*JoinClause)
	if !ok || !j.Include || j.Table != "session.events" || j.Timeframe.Duration != 2*time.Hour {
		t.Fatalf("got clause %+v, want include session.events past 2h", q.Clauses[0])
	}
	w := q.Clauses[1].(*WhereClause)
	and := w.Cond.(*Binary)
	if and.Op != "and" {
		t.Fatalf("got top operator %q, want and", and.Op)
	}
	cmp := and.L.(*Binary)
	if cmp.Op != ">=" || cmp.R.(*Literal).Value != int64(-3) {
		t.Errorf("got %q %v, want >= -3", cmp.Op, cmp.R)
	}
	if add := cmp.L.(*Binary); add.Op != "+" || add.L.(*Binary).Op != "*" {
		t.Errorf("got %q over %q, want + over *", add.Op, add.L.(*Binary).Op)
	}
	in := and.R.(*Unary).X.(*In)
	var items []string
	for _, it := range in.Items {
		switch x := it.(type) {
		case *Literal:
			items = append(items, show(x.Value))
		case *Param:
			items = append(items, "$"+x.Name)
		}
	}
	if want := []string{"i1", `"b\"c"`, "$p", "null", "true", "f1.5"}; !in.Not || !slices.Equal(items, want) {
		t.Errorf("got not=%v items %q, want not=true %q", in.Not, items, want)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		q         string
		line, col int
		msg       string
	}{
		{"devicez", 1, 1, `unknown table "devicez"`},
		{"devices\n| where nam == \"x\"", 2, 9, `unknown field "nam" in devices`},
		{`devices | include package.installed_packages | compute n = package.name.cnt()`, 1, 73, `unknown function "cnt"`},
		{`devices | with users`, 1, 16, "cannot with the object table users"},
		{`devices | with session.events | list user.name`, 1, 38, `unknown field "user.name" in devices`},
		{`devices | include package.installed_packages | compute n = package.name`, 1, 60, "can only be read in a where right after the include or inside an aggregate"},
		{`devices | where count() > 1`, 1, 17, "count() is an aggregate"},
		{`devices | compute n = count()`, 1, 23, "count() is an aggregate"},
		{`devices | summarize n = count() by name | list hardware.type`, 1, 48, "hardware.type is not a by field or a name of the summarize"},
		{`devices | summarize n = name by name`, 1, 25, "name must be inside an aggregate or after by"},
		{`users during past 7d`, 1, 7, "table users has no time field"},
		{`devices | include package.installed_packages past 7d`, 1, 46, "table package.installed_packages has no time field"},
		{`devices | where hardware.memory > "lots"`, 1, 35, `cannot use "lots" as a number with hardware.memory`},
		{`devices | where last_seen > "soon"`, 1, 29, `cannot use "soon" as a date-time with last_seen`},
		{`remote_action.executions | with session.events`, 1, 28, "with needs an object table"},
		{`users | with package.installed_packages`, 1, 14, "table package.installed_packages is not linked to users"},
		{`devices | compute x = 1 | compute x = 2`, 1, 35, `"x" is already defined`},
		{`devices | list name | list name`, 1, 23, "only one list clause"},
		{`devices | sort name | sort name`, 1, 23, "only one sort clause"},
		{`devices | limit 1 | limit 2`, 1, 21, "only one limit clause"},
		{`devices | summarize s = sum()`, 1, 25, "sum() needs a field"},
		{`devices | summarize a = count() | summarize b = count()`, 1, 35, "only one summarize clause"},
		{`devices | summarize a = count() | with session.events`, 1, 35, "with after summarize is not supported"},
		{`devices | summarize a = count() by name, name`, 1, 42, "name appears twice after by"},
		{`devices | summarize a = count() by name | sort hardware.type`, 1, 48, "hardware.type is not a by field"},
		{`devices | list remote_action.Bad.execution.status`, 1, 16, `unknown field "remote_action.Bad.execution.status"`},
		{`devices | list remote_action.x.execution.outputs`, 1, 16, "unknown field"},
		{`session.events | list remote_action.x.execution.status`, 1, 23, "unknown field"},
		{`devices | with session.events | where nope == 1`, 1, 39, `unknown field "nope" in devices or session.events`},
	}
	for _, tt := range tests {
		_, err := Compile(tt.q, DefaultSchema())
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Compile(%q): got %v, want an *Error", tt.q, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.col || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("Compile(%q):\ngot  %d:%d %q\nwant %d:%d %q", tt.q, pe.Line, pe.Column, pe.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct {
		src    string
		params map[string]string
		want   string
	}{
		{`devices | where name == $device_name`, map[string]string{"device_name": `PC "1" \ x`},
			`devices | where name == "PC \"1\" \\ x"`},
		{`devices | where name == "$device_name" or name == $n`, map[string]string{"n": "a"},
			`devices | where name == "$device_name" or name == "a"`},
		{`devices | where name == "a\"$n" or x == $n`, map[string]string{"n": "b"},
			`devices | where name == "a\"$n" or x == "b"`},
		{"devices | where name in [$a,$b]\n| list name", map[string]string{"a": "1", "b": "line\nbreak"},
			"devices | where name in [\"1\",\"line\\nbreak\"]\n| list name"},
		{`devices | where x == 1 $`, nil, `devices | where x == 1 $`},
		{`devices | where name == "unterminated $n`, nil, `devices | where name == "unterminated $n`},
	}
	for _, tt := range tests {
		got, err := Substitute(tt.src, tt.params)
		if err != nil {
			t.Errorf("Substitute(%q): %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Substitute(%q):\ngot  %q\nwant %q", tt.src, got, tt.want)
		}
	}
	_, err := Substitute(`devices | where name == $a or name == $missing`, map[string]string{"a": "x"})
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Name != "missing" {
		t.Errorf("got %v, want a *ParamError naming missing", err)
	}
}

// TestSubstituteRoundTrip checks that a substituted value reads back unchanged.
func TestSubstituteRoundTrip(t *testing.T) {
	for _, v := range []string{``, `plain`, `"quoted"`, `back\slash`, "tab\tnew\nline", `$dollar`, `é"\`} {
		s, err := Substitute(`devices | where name == $v`, map[string]string{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		got := q.Clauses[0].(*WhereClause).Cond.(*Binary).R.(*Literal).Value
		if got != v {
			t.Errorf("round trip of %q: got %q", v, got)
		}
	}
}

func TestAnalysis(t *testing.T) {
	tests := []struct {
		q          string
		params     []string
		key        *DeviceKey
		deviceOnly bool
		fields     []string // exact, in order
	}{
		{q: `devices | where name == $n | list name, hardware.memory`, params: []string{"n"},
			key: &DeviceKey{"device.name", "n"}, deviceOnly: true, fields: []string{"device.name", "device.hardware.memory"}},
		{q: `devices | where name contains "x" and collector.uid == $uid | list name`, params: []string{"uid"},
			key: &DeviceKey{"device.collector.uid", "uid"}, deviceOnly: true, fields: []string{"device.name", "device.collector.uid"}},
		{q: `devices | where hardware.type == "laptop" | where $n == device.name | list name`, params: []string{"n"},
			key: &DeviceKey{"device.name", "n"}, deviceOnly: true, fields: []string{"device.hardware.type", "device.name"}},
		{q: `devices | where name == $n | list remote_action.x.execution.status`, params: []string{"n"},
			key: &DeviceKey{"device.name", "n"}, fields: []string{"device.name", "remote_action.x.execution.status"}},
		{q: `devices during past 1d | where name == "lit" or name == $n | list name`, params: []string{"n"},
			deviceOnly: true, fields: []string{"device.last_seen", "device.name"}},
		{q: `devices | with session.events | where device.name == $n | list name`, params: []string{"n"},
			fields: []string{"device.name"}},
		{q: `devices | where name == $b or collector.uid == $a or name == $b | list name`, params: []string{"b", "a"},
			deviceOnly: true, fields: []string{"device.name", "device.collector.uid"}},
		{q: `devices | where hardware.memory > $m * 2 and name == $n`, params: []string{"m", "n"},
			key: &DeviceKey{"device.name", "n"}, deviceOnly: true,
			fields: []string{"device.hardware.memory", "device.name", "device.collector.uid", "device.entity",
				"device.operating_system.platform", "device.operating_system.name", "device.hardware.type", "device.last_seen"}},
		{q: `users | where name == $n | list name`, params: []string{"n"}, fields: []string{"user.name"}},
	}
	for _, tt := range tests {
		p, err := Compile(tt.q, nil)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.q, err)
		}
		a := p.Analysis()
		if !slices.Equal(a.Parameters, tt.params) {
			t.Errorf("%q Parameters: got %q, want %q", tt.q, a.Parameters, tt.params)
		}
		if (a.DeviceKey == nil) != (tt.key == nil) || a.DeviceKey != nil && *a.DeviceKey != *tt.key {
			t.Errorf("%q DeviceKey: got %+v, want %+v", tt.q, a.DeviceKey, tt.key)
		}
		if a.DeviceOnly != tt.deviceOnly {
			t.Errorf("%q DeviceOnly: got %v, want %v", tt.q, a.DeviceOnly, tt.deviceOnly)
		}
		if !slices.Equal(a.Fields, tt.fields) {
			t.Errorf("%q Fields: got %q, want %q", tt.q, a.Fields, tt.fields)
		}
	}
	// Analysis returns copies: changing one must not change the plan.
	p, _ := Compile(`devices | where name == $n | list name`, nil)
	a := p.Analysis()
	a.Headers[0], a.Parameters[0], a.DeviceKey.Field = "x", "x", "x"
	if b := p.Analysis(); b.Headers[0] != "device.name" || b.Parameters[0] != "n" || b.DeviceKey.Field != "device.name" {
		t.Errorf("Analysis shares state with the plan: got %+v", b)
	}
}

// TestAnalysisColumnTypes: each output column has the type of the field or
// expression it shows, and Limit is the query's own limit.
func TestAnalysisColumnTypes(t *testing.T) {
	dt, i, str, any := TypeDateTime, TypeInt, TypeString, TypeAny
	tests := []struct {
		q     string
		types []FieldType
		limit int
	}{
		{`devices | list name, last_seen, hardware.memory, remote_action.x.execution.time, remote_action.x.execution.outputs.A`,
			[]FieldType{str, dt, i, dt, any}, -1},
		{`devices | include session.events | compute last_session = session.events.end_time.max() | list name, last_session | limit 5`,
			[]FieldType{str, dt}, 5},
		{`session.events past 7d | summarize last = end_time.max(), n = count() by device.name`,
			[]FieldType{str, dt, i}, -1},
		{`remote_action.executions past 1d | limit 1000`,
			[]FieldType{str, str, str, str, str, str, str, str, dt, str, str}, 1000},
	}
	for _, tt := range tests {
		p, err := Compile(tt.q, nil)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.q, err)
		}
		a := p.Analysis()
		if !slices.Equal(a.Types, tt.types) || len(a.Types) != len(a.Headers) {
			t.Errorf("%q Types: got %v for %q, want %v", tt.q, a.Types, a.Headers, tt.types)
		}
		if a.Limit != tt.limit {
			t.Errorf("%q Limit: got %d, want %d", tt.q, a.Limit, tt.limit)
		}
	}
}

func TestSchemaFieldType(t *testing.T) {
	s := DefaultSchema()
	for _, tt := range []struct {
		field string
		typ   FieldType
		ok    bool
	}{
		{"device.last_seen", TypeDateTime, true}, {"device.name", TypeString, true},
		{"session.events.end_time", TypeDateTime, true}, {"user.upn", TypeString, true},
		{"remote_action.executions.time", TypeDateTime, true}, {"alert.trigger_time", TypeDateTime, true},
		{"remote_action.get_x.execution.time", TypeDateTime, true},
		{"remote_action.get_x.execution.outputs.LastBoot", TypeAny, true},
		{"last_session", TypeAny, false}, {"last_seen", TypeAny, false},
	} {
		if typ, ok := s.FieldType(tt.field); typ != tt.typ || ok != tt.ok {
			t.Errorf("FieldType(%q): got %v %v, want %v %v", tt.field, typ, ok, tt.typ, tt.ok)
		}
	}
}

func TestSchema(t *testing.T) {
	s := DefaultSchema()
	for _, tt := range []struct {
		field string
		want  bool
	}{
		{"device.name", true}, {"device.boot.days_since_last_full_boot", true}, {"name", false},
		{"remote_action.x.execution.status", false}, {"user.name", false}, {"device.nope", false},
	} {
		if got := s.IsDeviceField(tt.field); got != tt.want {
			t.Errorf("IsDeviceField(%q): got %v, want %v", tt.field, got, tt.want)
		}
	}
	for _, name := range []string{"devices", "device.devices", "users", "user.users", "session.events",
		"package.installed_packages", "device_performance.events", "execution.crashes",
		"remote_action.executions", "alert.alerts"} {
		tb, ok := s.Table(name)
		if !ok {
			t.Errorf("Table(%q): not found", name)
			continue
		}
		// Every default field must resolve against its own table.
		for _, f := range tb.Defaults {
			if r, ok := s.resolveIn(tb, f); !ok || r.name != f {
				t.Errorf("%s: default field %q does not resolve to itself", tb.Name, f)
			}
		}
	}
	if _, ok := s.Table("nope"); ok {
		t.Error("Table(nope): found, want not found")
	}
	for _, tt := range []struct{ in, canon string }{
		{"remote_action.get_x.execution.outputs.Ok_1", "remote_action.get_x.execution.outputs.Ok_1"},
		{"device.remote_action.a1.execution.time", "remote_action.a1.execution.time"},
		{"remote_action.a.execution.status_details", "remote_action.a.execution.status_details"},
	} {
		if got, _, ok := remoteActionField(tt.in); !ok || got != tt.canon {
			t.Errorf("remoteActionField(%q): got %q %v, want %q", tt.in, got, ok, tt.canon)
		}
	}
	for _, bad := range []string{"remote_action.A.execution.status", "remote_action..execution.status",
		"remote_action.a.execution.outputs.", "remote_action.a.execution.outputs.a-b", "remote_action.a.executions.status",
		"remote_action.name"} {
		if _, _, ok := remoteActionField(bad); ok {
			t.Errorf("remoteActionField(%q): got ok, want not", bad)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"16.*", "16.0.1", true}, {"16.*", "15.0.1", false}, {"16.*", "16.", true},
		{"*Microsoft 365*", "microsoft 365 apps", true}, {"*Microsoft 365*", "Microsoft 36", false},
		{"a*b", "ab", true}, {"a*b", "axxb", true}, {"a*b", "axxbc", false}, {"ab*b", "ab", false},
		{"*b*b", "abab", true}, {"*ba", "ba", true}, {"*ba", "aba", true}, {"*ba", "baa", false},
		{"*", "", true}, {"*", "x", true}, {"É*", "école", true}, {"*straße", "STRASSE", false},
		{"a*", "", false}, {"*a*b*c*", "xaybzc", true}, {"*a*b*c*", "xaybz", false},
	}
	for _, tt := range tests {
		p := compilePattern(tt.pat)
		if got := p.match(tt.s); got != tt.want {
			t.Errorf("%q matches %q: got %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestCompare(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		a, b Value
		c    int
		ok   bool
	}{
		{"abc", "ABD", -1, true}, {"B", "a", 1, true}, {"Ä", "ä", 0, true},
		{int64(2), 2.5, -1, true}, {3.0, int64(3), 0, true}, {"10", int64(9), 1, true}, {"x", int64(9), 0, false},
		{t0, "2024-01-01", 0, true}, {t0, t0.Add(time.Second), -1, true}, {true, "false", 1, true},
		{nil, nil, 0, false}, {nil, "a", 0, false}, {int64(1), true, 0, false},
	}
	for _, tt := range tests {
		c, ok := compare(tt.a, tt.b)
		if c != tt.c || ok != tt.ok {
			t.Errorf("compare(%v, %v): got %d %v, want %d %v", tt.a, tt.b, c, ok, tt.c, tt.ok)
		}
	}
}
