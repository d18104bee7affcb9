package auditlog_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/auditlog"
	"github.com/dexbridge/dexbridge/internal/store"
)

func record(id int64) store.AuditRecord {
	decided := time.Date(2026, 1, 2, 3, 4, 6, 0, time.FixedZone("CET", 3600))
	return store.AuditRecord{ID: id, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), APIKeyID: "key_1",
		RemoteAction: "#repair_onedrive", Device: "PC-<1>", Params: map[string]string{"Mode": "full"}, Outcome: store.AuditTriggered,
		DecidedAt: &decided}
}

func lines(t *testing.T, raw []byte) []auditlog.Record {
	t.Helper()
	var out []auditlog.Record
	for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var r auditlog.Record
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func TestEncode(t *testing.T) {
	var b bytes.Buffer
	noParams := record(2)
	noParams.Params, noParams.DecidedAt = nil, nil
	if err := auditlog.Encode(&b, record(1), noParams); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"at":"2026-01-02T02:04:05Z"`) || !strings.Contains(b.String(), `"device":"PC-<1>"`) {
		t.Errorf("got %s, want times in UTC and text unescaped", b.String())
	}
	got := lines(t, b.Bytes())
	if len(got) != 2 || got[0].Params["Mode"] != "full" || got[0].DecidedAt == nil || got[1].Params == nil || got[1].DecidedAt != nil {
		t.Errorf("got %+v", got)
	}
}

// TestExportToAFile appends every batch to one file, across runs, and starts a line
// of its own after a line a crash left unfinished.
func TestExportToAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	e, err := auditlog.NewExport(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Write([]store.AuditRecord{record(1), record(2)}); err != nil {
		t.Fatal(err)
	}
	if err := e.End(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":3,"at":"20`); err != nil { // a crash in the middle of a write
		t.Fatal(err)
	}
	f.Close()
	if err := e.Write([]store.AuditRecord{record(3)}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(ls) != 4 || ls[2] != `{"id":3,"at":"20` {
		t.Fatalf("got %q, want 2 lines, the unfinished one, then the new record", ls)
	}
	if got := lines(t, []byte(ls[3])); got[0].ID != 3 {
		t.Errorf("last line: got %+v", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v, want 0600", fi.Mode())
	}
}

// TestExportToADirectory writes a file per run.
func TestExportToADirectory(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e, err := auditlog.NewExport(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		for i := range 2 {
			if err := e.Write([]store.AuditRecord{record(int64(10*run + i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.End(); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(files) != 2 || filepath.Base(files[0]) != "remote_action_audit-20260301T120000.000Z.jsonl" {
		t.Fatalf("got %v, want a file per run", files)
	}
	for i, f := range files {
		raw, _ := os.ReadFile(f)
		if got := lines(t, raw); len(got) != 2 || got[0].ID != int64(10*i) {
			t.Errorf("%s: got %+v", f, got)
		}
	}
}

// TestExportFailureIsReported: a write the disk refuses is an error, so the pruner
// deletes nothing.
func TestExportFailureIsReported(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to refuse writes")
	}
	e, err := auditlog.NewExport("/dev/full", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Write([]store.AuditRecord{record(1)}); err == nil {
		t.Error("a write to a full disk: got no error")
	}
	if _, err := auditlog.NewExport(filepath.Join(t.TempDir(), "no", "such", "file"), nil); err == nil {
		t.Error("an export into a missing directory: got no error")
	}
}
