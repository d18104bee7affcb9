package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dexbridge/dexbridge/internal/auditlog"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/store"
)

// auditCmd reads the remote-action audit log straight from the database.
func auditCmd(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		return fmt.Errorf("%w: dexbridge audit export [-since t] [-until t] [-o file]", ErrUsage)
	}
	fs, path := flags("audit export", env)
	since := fs.String("since", "", "first record's time: RFC 3339 (2026-01-31T00:00:00Z), a date (2026-01-31, UTC) or an age (30d, 12h); empty: the oldest")
	until := fs.String("until", "", "records before this time, same forms; empty: up to now")
	out := fs.String("o", "", "file to write (created or truncated, mode 0600); empty: standard output")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dexbridge audit export [-config file] [-since t] [-until t] [-o file]\n\n"+
			"Writes the remote-action audit records of [since, until) as JSON lines, oldest first, one record per line\n"+
			"(the form the pruner exports to retention.audit_export).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	now := time.Now()
	from, err := parseWhen(*since, now)
	if err != nil {
		return fmt.Errorf("%w: -since: %v", ErrUsage, err)
	}
	to, err := parseWhen(*until, now)
	if err != nil {
		return fmt.Errorf("%w: -until: %v", ErrUsage, err)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return fmt.Errorf("%w: -since must be before -until", ErrUsage)
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	pool, _, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *out == "" {
		_, err := exportAudit(ctx, store.New(pool), from, to, env.Stdout)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := exportAudit(ctx, store.New(pool), from, to, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit export to %s: %w", *out, err)
	}
	_, err = fmt.Fprintf(env.Stderr, "exported %d audit records to %s\n", n, *out)
	return err
}

// exportAudit writes the records of [from, to) to w and counts them.
func exportAudit(ctx context.Context, db *store.DB, from, to time.Time, w io.Writer) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	err := db.EachAuditRecord(ctx, from, to, func(r store.AuditRecord) error {
		n++
		return auditlog.Encode(bw, r)
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// parseWhen reads a point in time: RFC 3339, a date (midnight UTC), or an age
// before now ("30d", "12h"). Empty is the zero time (no bound).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s, false)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("want an RFC 3339 time, a date (2006-01-02) or an age such as 30d or 12h")
	}
	return now.Add(-d), nil
}
