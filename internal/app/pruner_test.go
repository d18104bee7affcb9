package app_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dexbridge/dexbridge/internal/store"
)

// TestPrunerRunsInTheProcess: the pruner service prunes at start, with the
// configured retention, and exports the audit records it deletes.
func TestPrunerRunsInTheProcess(t *testing.T) {
	cfg := testConfig(t)
	cfg.Retention.AuditExport = t.TempDir()
	ctx := context.Background()
	pool, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO remote_action_audit (at, remote_action, device, outcome)
		VALUES (now() - interval '400 days', '#a', 'PC-old', 'triggered'), (now(), '#a', 'PC-new', 'triggered')`); err != nil {
		t.Fatal(err)
	}
	start(t, cfg, "ingress", "pruner") // the ingress tells the test when the process is up
	devices := func() []string {
		var out []string
		rows, err := pool.Query(ctx, `SELECT device FROM remote_action_audit`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			_ = rows.Scan(&d)
			out = append(out, d)
		}
		return out
	}
	waitUntil(t, func() bool { d := devices(); return len(d) == 1 && d[0] == "PC-new" })
	files, _ := filepath.Glob(filepath.Join(cfg.Retention.AuditExport, "*.jsonl"))
	if len(files) != 1 {
		t.Errorf("export files: got %v, want one", files)
	}
}
