package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/auditlog"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestAuditExport writes the audit records of a window as JSON lines, to standard
// output or to a file, and refuses a bad window.
func TestAuditExport(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	ctx := context.Background()
	pool := testenv.Migrated(t, dbURL)
	db := store.New(pool)
	for i, at := range []string{"2020-01-10T00:00:00Z", "2020-02-10T00:00:00Z", "2020-02-20T00:00:00Z", "2020-03-10T00:00:00Z"} {
		id, err := db.RecordAudit(ctx, store.AuditRecord{RemoteAction: "#a", Device: "PC-" + string(rune('0'+i)),
			Outcome: store.AuditRefused, Code: "forbidden", Params: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE remote_action_audit SET at = $2 WHERE id = $1`, id, at); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		env := Env{Getenv: func(k string) string {
			if k == "DATABASE_URL" {
				return dbURL
			}
			return ""
		}, Stdout: &out, Stderr: &errOut}
		err := Run(ctx, append([]string{"audit", "export", "-config", writeEmptyConfig(t)}, args...), env)
		return out.String(), errOut.String(), err
	}
	devices := func(jsonl string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(jsonl), "\n") {
			var r auditlog.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if r.Code != "forbidden" || r.Params["k"] != "v" {
				t.Errorf("record %+v: want its fields", r)
			}
			out = append(out, r.Device)
		}
		return out
	}

	out, _, err := run("-since", "2020-02-01", "-until", "2020-03-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if got := devices(out); strings.Join(got, ",") != "PC-1,PC-2" {
		t.Errorf("February: got %v, want PC-1 and PC-2", got)
	}

	file := filepath.Join(t.TempDir(), "audit.jsonl")
	_, msg, err := run("-o", file)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(file)
	if got := devices(string(raw)); strings.Join(got, ",") != "PC-0,PC-1,PC-2,PC-3" || !strings.Contains(msg, "exported 4 audit records") {
		t.Errorf("everything to a file: got %v (%q), want the four in order", got, msg)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: got %v, want 0600", fi.Mode())
	}

	// An age: nothing is that recent.
	if out, _, err := run("-since", "1h"); err != nil || out != "" {
		t.Errorf("-since 1h: got %q %v, want nothing", out, err)
	}
	for _, bad := range [][]string{{"-since", "yesterday"}, {"-since", "2020-03-01", "-until", "2020-02-01"}, {"extra"}} {
		if _, _, err := run(bad...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: got %v, want a usage error", bad, err)
		}
	}
	if _, _, err := run("-h"); err != nil {
		t.Errorf("-h: got %v, want the help and no error", err)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-04-01":                time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		"2026-04-01T10:00:00+02:00": time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC),
		"30d":                       now.Add(-30 * 24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q): got %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-3d", "30"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q): got no error", bad)
		}
	}
}

// writeEmptyConfig is a configuration file that sets nothing: the environment does.
func writeEmptyConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dexbridge.yaml")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzParseWhen: any -since or -until is either refused or a point in time.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"", "30d", "1.5h", "2026-04-01", "2026-04-01T10:00:00+02:00", "-3d", "9999999999d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWhen(s, now)
		if err == nil && s != "" && got.IsZero() {
			t.Errorf("parseWhen(%q): no error and no time", s)
		}
	})
}
