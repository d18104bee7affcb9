package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validDB = "postgres://u@127.0.0.1:5432/db?sslmode=disable"

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dexbridge.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load loads file (no file when empty) with a valid DATABASE_URL and vars in the
// environment: the table tests' case, a file and the variables set beside it.
func load(t *testing.T, file string, vars map[string]string) (Config, error) {
	t.Helper()
	e := map[string]string{"DATABASE_URL": validDB}
	maps.Copy(e, vars)
	path := ""
	if file != "" {
		path = writeFile(t, file)
	}
	return Load(path, env(e))
}

func TestLegacyVariablesKeepTheirDefaults(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"DATABASE_URL": validDB}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Cache.Refresh.D(), time.Hour; got != want {
		t.Errorf("CHATBOT_CACHE_REFRESH default: got %v, want %v", got, want)
	}
	if got, want := cfg.Cache.UserActivityPeriod.D(), 30*24*time.Hour; got != want {
		t.Errorf("USER_ACTIVITY_PERIOD default: got %v, want %v", got, want)
	}
	l := cfg.Limits
	if l.CacheRequestsPerSecond != 500 || l.EngineRequestsPerSecond != 40 || l.PortalRequestsPerSecond != 20 {
		t.Errorf("limits: got %+v, want cache 500, engine 40, portal 20", l)
	}
	if cfg.Listen != "127.0.0.1:8090" {
		t.Errorf("listen: got %q, want the legacy port 8090 on loopback", cfg.Listen)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	path := writeFile(t, "limits:\n  engine_requests_per_second: 10\ncache:\n  refresh: 2h\n")
	cfg, err := Load(path, env(map[string]string{
		"DATABASE_URL":                   validDB,
		"MAX_ENGINE_REQUESTS_PER_SECOND": "7.5",
		"MAX_PORTAL_REQUESTS_PER_SECOND": "3",
		"MAX_CACHE_REQUESTS_PER_SECOND":  "100",
		"USER_ACTIVITY_PERIOD":           "14", // legacy form: days
		"NATS_URL":                       "nats://10.0.0.1:4222",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Limits.EngineRequestsPerSecond; got != 7.5 {
		t.Errorf("engine limit: got %v, want 7.5 (environment wins)", got)
	}
	if got := cfg.Cache.Refresh.D(); got != 2*time.Hour {
		t.Errorf("refresh: got %v, want 2h from the file", got)
	}
	if got := cfg.Cache.UserActivityPeriod.D(); got != 14*24*time.Hour {
		t.Errorf("activity period: got %v, want 14 days", got)
	}
	if cfg.Limits.PortalRequestsPerSecond != 3 || cfg.Limits.CacheRequestsPerSecond != 100 || cfg.NATS.URL != "nats://10.0.0.1:4222" {
		t.Errorf("overrides not applied: %+v %+v", cfg.Limits, cfg.NATS)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want string
	}{
		{"unknown key", "limts:\n  x: 1\n", nil, "limts"},
		{"wrong type", "limits:\n  engine_requests_per_second: lots\n", nil, "limits.engine_requests_per_second"},
		{"negative rate", "limits:\n  portal_requests_per_second: -1\n", nil, "limits.portal_requests_per_second"},
		{"bad duration", "cache:\n  refresh: soon\n", nil, "cache.refresh"},
		{"bad env number", "", map[string]string{"MAX_ENGINE_REQUESTS_PER_SECOND": "abc"}, "MAX_ENGINE_REQUESTS_PER_SECOND"},
		{"zero env rate", "", map[string]string{"MAX_CACHE_REQUESTS_PER_SECOND": "0"}, "limits.cache_requests_per_second"},
		{"bad env duration", "", map[string]string{"CHATBOT_CACHE_REFRESH": "60"}, "CHATBOT_CACHE_REFRESH"},
		{"missing database", "", map[string]string{"DATABASE_URL": ""}, "DATABASE_URL"},
		{"bad listen", "", map[string]string{"LISTEN_ADDR": "8090"}, "LISTEN_ADDR"},
		{"bad log level", "", map[string]string{"LOG_LEVEL": "loud"}, "log_level"},
		{"instance without credentials", "instances:\n  - name: eu\n    api_url: https://eu.api.eu.nexthink.cloud\n    token_url: https://eu-login.eu.nexthink.cloud\n", nil, "NEXTHINK_EU_CLIENT_SECRET"},
		{"secret in the file", "instances:\n  - name: eu\n    api_url: https://a\n    token_url: https://b\n    client_secret: s3cr3t\n", nil, "instances[0]"},
		{"bad instance url", "instances:\n  - name: eu\n    api_url: ftp://x\n    token_url: https://b\n", map[string]string{"NEXTHINK_EU_CLIENT_ID": "i", "NEXTHINK_EU_CLIENT_SECRET": "s"}, "instances[0].api_url"},
		{"unknown instance type", "instances:\n  - name: eu\n    type: v7\n    api_url: https://a\n    token_url: https://b\n", map[string]string{"NEXTHINK_EU_CLIENT_ID": "i", "NEXTHINK_EU_CLIENT_SECRET": "s"}, "instances[0].type"},
		{"v6 without portal", "instances:\n  - name: dc\n    type: v6\n", map[string]string{"NEXTHINK_DC_USERNAME": "u", "NEXTHINK_DC_PASSWORD": "p"}, "portal_url"},
		{"v6 without credentials", "instances:\n  - name: dc\n    type: v6\n    portal_url: https://portal\n", map[string]string{"NEXTHINK_DC_CLIENT_ID": "u", "NEXTHINK_DC_CLIENT_SECRET": "p"}, "NEXTHINK_DC_PASSWORD"},
		{"v6 bad engine url", "instances:\n  - name: dc\n    type: v6\n    portal_url: https://portal\n    engines:\n      - {name: e1, url: \"1671\"}\n", map[string]string{"NEXTHINK_DC_USERNAME": "u", "NEXTHINK_DC_PASSWORD": "p"}, "instances[0].engines[0].url"},
		{"v6 duplicate engine", "instances:\n  - name: dc\n    type: v6\n    portal_url: https://portal\n    engines:\n      - {name: e1, url: \"https://e1:1671\"}\n      - {name: e1, url: \"https://e2:1671\"}\n", map[string]string{"NEXTHINK_DC_USERNAME": "u", "NEXTHINK_DC_PASSWORD": "p"}, "instances[0].engines[1].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.file, tt.env)
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to name %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

func TestCredentialsFromEnvironmentOrFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(file, []byte("client_id: file-id\nclient_secret: file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, fmt.Sprintf(`instances:
  - name: eu-prod
    api_url: https://eu.api.eu.nexthink.cloud
    token_url: https://eu-login.eu.nexthink.cloud
  - name: us
    api_url: https://us.api.us.nexthink.cloud
    token_url: https://us-login.us.nexthink.cloud
    credentials_file: %s
    limits:
      engine_requests_per_second: 5
`, file))
	cfg, err := Load(path, env(map[string]string{
		"DATABASE_URL":                   validDB,
		"NEXTHINK_EU_PROD_CLIENT_ID":     "env-id",
		"NEXTHINK_EU_PROD_CLIENT_SECRET": "env-secret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	eu, us := cfg.Instances[0], cfg.Instances[1]
	if eu.ClientID != "env-id" || eu.ClientSecret.Reveal() != "env-secret" {
		t.Errorf("eu-prod credentials: got %q/%q, want env-id/env-secret", eu.ClientID, eu.ClientSecret.Reveal())
	}
	if us.ClientID != "file-id" || us.ClientSecret.Reveal() != "file-secret" {
		t.Errorf("us credentials: got %q/%q, want file-id/file-secret", us.ClientID, us.ClientSecret.Reveal())
	}
	if got := cfg.InstanceLimits(us).EngineRequestsPerSecond; got != 5 {
		t.Errorf("us engine limit: got %v, want the override 5", got)
	}
	if got := cfg.InstanceLimits(eu).EngineRequestsPerSecond; got != 40 {
		t.Errorf("eu engine limit: got %v, want the default 40", got)
	}
	for _, s := range []string{fmt.Sprint(us.ClientSecret), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", us.ClientSecret)} {
		if strings.Contains(s, "file-secret") || strings.Contains(s, "env-secret") {
			t.Errorf("a secret prints: %s", s)
		}
	}
}

// TestV6InstanceCredentials: a v6 instance takes Basic credentials from its
// variables or its file, and an instance without a type is Infinity.
func TestV6InstanceCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.yaml")
	if err := os.WriteFile(file, []byte("username: portal-user\npassword: file-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, fmt.Sprintf(`instances:
  - name: eu
    api_url: https://eu.api.eu.nexthink.cloud
    token_url: https://eu-login.eu.nexthink.cloud
  - name: dc
    type: v6
    portal_url: https://portal.example.com
    credentials_file: %s
    engines:
      - {name: engine-1, url: "https://engine-1.example.com:1671", uid: 5f0c}
  - name: lab
    type: v6
    portal_url: https://portal.lab.example.com
`, file))
	cfg, err := Load(path, env(map[string]string{"DATABASE_URL": validDB,
		"NEXTHINK_EU_CLIENT_ID": "i", "NEXTHINK_EU_CLIENT_SECRET": "s",
		"NEXTHINK_LAB_USERNAME": "lab-user", "NEXTHINK_LAB_PASSWORD": "env-pass"}))
	if err != nil {
		t.Fatal(err)
	}
	eu, dc, lab := cfg.Instances[0], cfg.Instances[1], cfg.Instances[2]
	if eu.IsV6() || !dc.IsV6() || !lab.IsV6() {
		t.Fatalf("types: %q %q %q", eu.Type, dc.Type, lab.Type)
	}
	if dc.Username != "portal-user" || dc.Password.Reveal() != "file-pass" || dc.ClientID != "" {
		t.Errorf("dc credentials: %q/%q", dc.Username, dc.Password.Reveal())
	}
	if lab.Username != "lab-user" || lab.Password.Reveal() != "env-pass" {
		t.Errorf("lab credentials: %q/%q", lab.Username, lab.Password.Reveal())
	}
	if len(dc.Engines) != 1 || dc.Engines[0].UID != "5f0c" {
		t.Errorf("dc engines: %+v", dc.Engines)
	}
	if s := fmt.Sprintf("%+v", cfg); strings.Contains(s, "file-pass") || strings.Contains(s, "env-pass") {
		t.Errorf("a password prints")
	}
}

func TestShippedConfigIsValid(t *testing.T) {
	_, err := Load("../../config/dexbridge.yaml", env(nil))
	var ce *Error
	if err != nil && !errors.As(err, &ce) {
		t.Fatalf("shipped config: %v", err)
	}
	if err != nil {
		t.Fatalf("shipped config: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in       string
		bareDays bool
		want     time.Duration
		wantErr  bool
	}{
		{"1h", false, time.Hour, false},
		{"30d", false, 30 * 24 * time.Hour, false},
		{"1.5d", false, 36 * time.Hour, false},
		{"30", true, 30 * 24 * time.Hour, false},
		{"30", false, 0, true},
		{"d", false, 0, true},
		{"", false, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in, tt.bareDays)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q, %v): got %v, %v; want %v, error %v", tt.in, tt.bareDays, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestKeyOf(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "(document)",
		"/limits/engine":       "limits.engine",
		"/instances/0/api_url": "instances[0].api_url",
		"/a~1b":                "a/b",
	} {
		if got := KeyOf(in); got != want {
			t.Errorf("KeyOf(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestDocsDocumentEveryVariable keeps the configuration reference true.
func TestDocsDocumentEveryVariable(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables() {
		if !strings.Contains(string(raw), "| `"+v.Name+"` | `"+v.Key+"` |") {
			t.Errorf("docs/configuration.md has no row for %s (%s)", v.Name, v.Key)
		}
	}
}

// TestDocsDocumentEveryKey checks that every key of the configuration schema is named
// in docs/configuration.md, so a new key cannot go undocumented.
func TestDocsDocumentEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../schemas/config/dexbridge.json")
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Properties map[string]node `json:"properties"`
	}
	var schema node
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, n node)
	walk = func(prefix string, n node) {
		for k, sub := range n.Properties {
			if len(sub.Properties) > 0 {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", schema)
	if len(keys) < 10 {
		t.Fatalf("got %d keys from the schema, want the whole configuration", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not name the key %s", k)
		}
	}
}
