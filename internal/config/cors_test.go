package config

import (
	"slices"
	"strings"
	"testing"
)

// TestCORSOrigins: none by default; the file gives a list, the variable a
// comma-separated one; anything but an exact origin or "*" is refused by name.
func TestCORSOrigins(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"DATABASE_URL": validDB}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.CORS.AllowedOrigins) != 0 {
		t.Errorf("default: got %v, want no origin", cfg.CORS.AllowedOrigins)
	}
	path := writeFile(t, "cors:\n  allowed_origins: [\"https://portal.example.com\"]\n")
	cfg, err = Load(path, env(map[string]string{"DATABASE_URL": validDB}))
	if err != nil || !slices.Equal(cfg.CORS.AllowedOrigins, []string{"https://portal.example.com"}) {
		t.Errorf("file: got %v, %v", cfg.CORS.AllowedOrigins, err)
	}
	cfg, err = Load(path, env(map[string]string{"DATABASE_URL": validDB,
		"CORS_ALLOWED_ORIGINS": " https://a.example.com, http://localhost:3000 ,"}))
	if err != nil || !slices.Equal(cfg.CORS.AllowedOrigins, []string{"https://a.example.com", "http://localhost:3000"}) {
		t.Errorf("variable: got %v, %v", cfg.CORS.AllowedOrigins, err)
	}
	for o, ok := range map[string]bool{
		"*": true, "https://portal.example.com": true, "http://localhost:3000": true, "http://[::1]:8080": true,
		"https://portal.example.com/": false, "https://portal.example.com/app": false, "portal.example.com": false,
		"https://*.example.com": false, "ftp://example.com": false, "https://user@example.com": false,
		"https://example.com?x=1": false, "https://example.com:": false, "": false, "null": false,
	} {
		c := Default()
		c.DatabaseURL = validDB
		c.CORS.AllowedOrigins = []string{o}
		err := c.Validate()
		if (err == nil) != ok {
			t.Errorf("origin %q: got %v, want accepted %v", o, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "cors.allowed_origins[0]") {
			t.Errorf("origin %q: error %q does not name the key", o, err)
		}
	}
}
