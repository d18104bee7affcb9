package nxql_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nxql"
)

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name, query string
		columns     []string
	}{
		{"plain objects", `(select (device_uid name) (from device))`, []string{"device_uid", "name"}},
		{"one bare field", `(select name (from device))`, []string{"name"}},
		{"where with typed values",
			`(select (name) (from device (where device (eq name (string "PC-1")) (eq name (string PC-2)))
			  (where device (gt total_ram (integer 8000000000))) (where device (le last_seen (datetime 2025-01-31@08:00:00)))))`,
			[]string{"name"}},
		{"enum and pattern", `(select (name) (from device (where device (eq platform (enum windows)) (ne name (pattern "PC-*")))))`, []string{"name"}},
		{"real and any", `(select (name) (from device (where device (gt #"action:get_gpo_startup_impact_windows/UserGpoAppliedTimeInSeconds" (real 2.5)))))`, []string{"name"}},
		{"and or not", `(select (name) (from device (where device (and (not (eq entity (string Paris))) (or (lt number_of_days_since_last_boot (integer 3)) (ge number_of_days_since_last_boot (integer 10)))))))`, []string{"name"}},
		{"custom fields", `(select (name #Location #"score:Device health") (from device))`, []string{"name", "#Location", "#score:Device health"}},
		{"field wildcard", `(select (*_uid) (from device))`, []string{"device_uid"}},
		{"objects with activity",
			`(select (name number_of_sessions last_end_time) (from device (with session (where user (eq name (string jdoe))) (compute number_of_sessions last_end_time) (between now-7d now))) (order_by last_end_time desc) (limit 10))`,
			[]string{"name", "number_of_sessions", "last_end_time"}},
		{"events with decoration",
			`(select ((session (start_time end_time)) (user (name)) (device (name))) (from (session user device) (where device (eq platform (enum mac_os))) (between midnight-1d midnight)) (order_by start_time asc) (limit 100))`,
			[]string{"session.start_time", "session.end_time", "user.name", "device.name"}},
		{"two objects", `(select ((device (name)) (package (name version))) (from (device package) (with installation (where package (eq name (pattern "*Office*"))))))`,
			[]string{"device.name", "package.name", "package.version"}},
		{"order by an unselected field", `(select (name) (from device) (order_by last_seen desc))`, []string{"name"}},
		{"whitespace and newlines", "(select\n\t(name)\r\n(from\tdevice))", []string{"name"}},
	}
	s := nxql.NewSchema()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := nxql.Compile(tt.query, s)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := q.Columns(); !slices.Equal(got, tt.columns) {
				t.Fatalf("columns %v, want %v", got, tt.columns)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name, query  string
		line, column int
		msg          string
		option       string // one of the error options, when the error lists them
	}{
		{"empty", ``, 1, 1, "empty query", ""},
		{"unbalanced", `(select (name) (from device)`, 1, 1, "never closed", ""},
		{"extra paren", `(select (name) (from device)))`, 1, 30, "after the end", ""},
		{"unknown statement", `(update (name) (from device))`, 1, 2, `unknown statement "update"`, ""},
		{"unknown table", `(select (name) (from devices))`, 1, 22, `unknown table "devices"`, "device"},
		{"unknown field", "(select (name\n  nam) (from device))", 2, 3, `unknown field "nam"`, "name"},
		{"unknown filter", `(select (name) (from device (where device (like name (string x)))))`, 1, 44, `unknown filter "like"`, "eq"},
		{"unknown type", `(select (name) (from device (where device (eq name (text x)))))`, 1, 53, `unknown value type "text"`, "string"},
		{"type mismatch", `(select (name) (from device (where device (eq name (integer 3)))))`, 1, 52, "type string", ""},
		{"bad integer", `(select (name) (from device (where device (eq total_ram (integer 3x)))))`, 1, 66, `"3x" is not a valid integer`, ""},
		{"bad datetime", `(select (name) (from device (where device (gt last_seen (datetime yesterday)))))`, 1, 67, "not a valid datetime", ""},
		{"unknown enum", `(select (name) (from device (where device (eq platform (enum linux)))))`, 1, 56, `"linux" is not a value of platform`, "mac_os"},
		{"pattern with gt", `(select (name) (from device (where device (gt name (pattern "a*")))))`, 1, 52, "pattern only goes with eq or ne", ""},
		{"unknown aggregate", `(select (name) (from device (with session (compute count))))`, 1, 52, `unknown aggregate "count"`, "number_of_sessions"},
		{"between on objects", `(select (name) (from device (between now-1d now)))`, 1, 29, "between applies to events", ""},
		{"with on events", `(select (end_time) (from session (with crash)))`, 1, 34, "with applies to objects", ""},
		{"unknown clause", `(select (name) (from device (group_by name)))`, 1, 29, `unknown form "group_by"`, "where"},
		{"unknown sibling", `(select (name) (from device) (offset 3))`, 1, 30, `unknown form "offset"`, "limit"},
		{"negative limit", `(select (name) (from device) (limit -1))`, 1, 37, "whole number", ""},
		{"bad order", `(select (name) (from device) (order_by name up))`, 1, 45, "asc or desc", ""},
		{"where on unrelated table", `(select (name) (from device (where user (eq name (string x)))))`, 1, 36, "not a table of this clause", "device"},
		{"unlinked decoration", `(select (end_time) (from (session package)))`, 1, 26, "not linked", ""},
		{"unterminated string", `(select (name) (from device (where device (eq name (string "x)))))`, 1, 60, "unterminated string", ""},
		{"package alone", `(select (name) (from package))`, 1, 22, "only be read through the events", ""},
		{"deep nesting", strings.Repeat("(", 100) + strings.Repeat(")", 100), 1, 65, "nested deeper", ""},
		{"bad action field", `(select (#"action:Get Outlook/IsOnline") (from device))`, 1, 10, "unknown field", ""},
	}
	s := nxql.NewSchema()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nxql.Compile(tt.query, s)
			var e *nxql.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v, want an *nxql.Error", err)
			}
			if e.Pos.Line != tt.line || e.Pos.Column != tt.column || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("error %q at %d:%d, want %q at %d:%d", e.Msg, e.Pos.Line, e.Pos.Column, tt.msg, tt.line, tt.column)
			}
			if tt.option != "" && !slices.Contains(e.Options, tt.option) {
				t.Fatalf("options %v, want %q among them", e.Options, tt.option)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct {
		q      string
		params []string
		want   string
	}{
		{`(eq name (string "%1"))`, []string{"PC-1"}, `(eq name (string "PC-1"))`},
		{`%1 %2 %10 %3`, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, `a b j c`},
		{`%1 %2 %`, []string{"a"}, `a %2 %`},
		{`100%`, nil, `100%`},
		{`#%1`, []string{"Location"}, `#Location`},
	}
	for _, tt := range tests {
		if got := nxql.Substitute(tt.q, tt.params); got != tt.want {
			t.Errorf("Substitute(%q, %v) = %q, want %q", tt.q, tt.params, got, tt.want)
		}
	}
}
