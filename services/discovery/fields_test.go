package discovery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// TestSavedQueriesMatchTheCachedFields keeps config/queries.yaml, which nxsim loads and
// operators save in their tenant, in step with the cached fields derived from the
// topics. When it fails it prints the query to paste.
func TestSavedQueriesMatchTheCachedFields(t *testing.T) {
	set, err := topic.FilesIn("../..").Load()
	if err != nil {
		t.Fatal(err)
	}
	fields, err := CachedFields(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	saved := testenv.SavedQueries(t)
	for _, want := range []struct{ id, nql string }{
		{QueryDevices, DeviceQuery(fields)},
		{QueryUsers, UsersQuery},
		{QueryActivity, ActivityQuery},
	} {
		got, ok := saved[want.id]
		if !ok || !SameQuery(got, want.nql) {
			t.Errorf("config/queries.yaml: query %s is not what discovery expects; save this text (and in the tenant):\n"+
				"  - id: %q\n    nql: |\n%s", want.id, want.id, indent(want.nql, "      "))
		}
		if _, err := nql.Compile(want.nql, nil); err != nil {
			t.Errorf("%s does not compile: %v", want.id, err)
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for k := range lines {
		lines[k] = prefix + lines[k]
	}
	return strings.Join(lines, "\n")
}

func TestCachedFields(t *testing.T) {
	files := topic.FilesIn("../..")
	files.Dir = t.TempDir()
	body := `id: t
title: T
description: Queries of every kind.
platforms: [Windows]
data_collection: ["#get_onedrive_status"]
queries:
  - id: "#device_only"
    parameters: {device_name: device.name}
    nql: devices | where name == $device_name | list name, hardware.memory, boot.days_since_last_full_boot
  - id: "#joined"
    parameters: {device_name: device.name}
    nql: devices | where name == $device_name | include package.installed_packages | compute n = package.name.count() | list name, entity, n
  - id: "#remote_action"
    parameters: {device_name: device.name}
    nql: devices | where name == $device_name | list remote_action.get_onedrive_status.execution.outputs.OneDriveStatus, entity, remote_action.get_onedrive_status.execution.time, remote_action.get_onedrive_status.execution.status
`
	if err := os.WriteFile(filepath.Join(files.Dir, "t.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := files.Load()
	if err != nil {
		t.Fatal(err)
	}
	ident := IdentificationFields()
	tests := []struct {
		name     string
		override []string
		want     []string
		wantErr  string
	}{
		{"derived from device-only queries", nil, append(slices.Clone(ident), "device.boot.days_since_last_full_boot", "device.hardware.memory"), ""},
		{"override replaces the derived list", []string{"device.entity", "device.name"}, append(slices.Clone(ident), "device.entity"), ""},
		{"empty override keeps identification", []string{}, ident, ""},
		{"override refuses other tables", []string{"user.upn"}, nil, `"user.upn"`},
		{"override refuses remote-action fields", []string{"device.remote_action.x.execution.status"}, nil, "not a fully qualified field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CachedFields(set, tt.override)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error naming %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestLoadCachedFields(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte("fields:\n  - device.hardware.memory\n"), 0o600)
	_ = os.WriteFile(bad, []byte("fields:\n  - device.hardware.memory\n  - session.events.end_time\nextra: 1\n"), 0o600)
	got, err := LoadCachedFields(good)
	if err != nil || !slices.Equal(got, []string{"device.hardware.memory"}) {
		t.Errorf("good file: got %v, %v", got, err)
	}
	if _, err := LoadCachedFields(bad); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("bad file: got %v, want an error naming the file", err)
	}
}

func TestCachedFieldsJSON(t *testing.T) {
	header := append(IdentificationFields(), "device.hardware.memory", "device.boot.days_since_last_full_boot")
	dec, err := newDeviceDecoder(header, append(IdentificationFields(), "device.hardware.memory", "device.entity"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dec.missing, []string{"device.entity"}) {
		t.Errorf("missing: got %v, want [device.entity]", dec.missing)
	}
	rec := []string{"ABC-1", "u", "PC \"1\"\\\x01é\xff", "Windows", "", "", "", "", "", "2026-01-02 03:04:05", "jdoe", "yesterday", "017", ""}
	raw := dec.decode(rec).Fields
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("not JSON: %s: %v", raw, err)
	}
	// An identification field is left out when its column gives it back as the JSON
	// would have it (the store's withColumnFields).
	tests := []struct {
		field string
		want  any
	}{
		{"device.collector.uid", "ABC-1"}, // its column is in lower case
		{"device.name", "PC \"1\"\\\x01é\ufffd"},
		{"device.login.last_login_time", "yesterday"}, // its column has no time
		{"device.hardware.memory", float64(17)},
	}
	for _, tt := range tests {
		if v, ok := got[tt.field]; !ok || v != tt.want {
			t.Errorf("%s: got %#v (present %t), want %#v", tt.field, v, ok, tt.want)
		}
	}
	for _, field := range []string{"device.uid", "device.operating_system.platform", "device.operating_system.name", "device.last_seen", "device.login.last_login_user_name"} {
		if v, ok := got[field]; ok {
			t.Errorf("%s: got %#v, want it left to its column", field, v)
		}
	}
	if d := dec.decode(rec); d.CollectorUID != "abc-1" || d.LastLogonTime != nil || d.LastSeen == nil {
		t.Errorf("staged device: got %+v, want a lower-cased collector uid, a last_seen and no logon time", d)
	}
	if _, err := newDeviceDecoder([]string{"device.name"}, nil); err == nil || !strings.Contains(err.Error(), QueryDevices) {
		t.Errorf("results without the identification fields: got %v, want an error naming %s", err, QueryDevices)
	}
}
