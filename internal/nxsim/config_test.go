package nxsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		tenants []TenantConfig
		want    string
	}{
		{"defaults", nil, ""},
		{"bad name", []TenantConfig{{Name: "EU!"}}, "tenants[0].name"},
		{"duplicate name", []TenantConfig{{Name: "eu"}, {Name: "eu", Prefix: "X"}}, "duplicate"},
		{"colliding prefixes", []TenantConfig{{Name: "eu"}, {Name: "us", Prefix: "eu"}}, "tenants[1].prefix"},
		{"reserved prefix", []TenantConfig{{Name: "pc"}}, "reserved"},
		{"too small", []TenantConfig{{Name: "eu", Size: 5}}, "tenants[0].size"},
		{"bad zone", []TenantConfig{{Name: "eu", TimeZone: "Mars/Olympus"}}, "time_zone"},
		{"bad permission", []TenantConfig{{Name: "eu", Credentials: []Credential{{"a", "b", []string{"admin"}}}}}, "unknown permission"},
	}
	for _, tt := range tests {
		err := Config{Tenants: tt.tenants}.withDefaults().Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadTenants(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte("tenants:\n  - name: emea\n    size: 20\n    credentials:\n      - {client_id: a, client_secret: b, permissions: [nql]}\n  - name: apac\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("tenants:\n  - name: emea\n    sise: 20\n"), 0o600)
	ts, err := LoadTenants(good)
	if err != nil || len(ts) != 2 || ts[0].Size != 20 || ts[0].Credentials[0].Permissions[0] != "nql" {
		t.Fatalf("LoadTenants(good): got %+v, %v", ts, err)
	}
	if _, err := LoadTenants(bad); err == nil || !strings.Contains(err.Error(), "sise") {
		t.Errorf("LoadTenants(bad): got %v, want an error naming the unknown key", err)
	}
	cfg := Config{Tenants: ts}.withDefaults()
	if cfg.Tenants[1].Prefix != "APAC" || !*cfg.Tenants[0].Scenarios || *cfg.Tenants[1].Scenarios || cfg.Tenants[1].Credentials[0].ClientID != "apac-client" {
		t.Errorf("defaults: got %+v", cfg.Tenants)
	}
}
