// Package auditlog writes the remote-action audit log as JSON lines, one record per
// line: what `dexbridge audit export` prints, and what the pruner appends to its
// export before it deletes old records. Both write the same form, so one reader
// takes either.
package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
)

// Record is one line: an audit record, its fields as the remote_action_audit table
// has them. A record exported twice (see Export) has the same id both times.
type Record struct {
	ID                int64             `json:"id"`
	At                time.Time         `json:"at"`
	APIKeyID          string            `json:"api_key_id"`
	HTTPRequestID     string            `json:"http_request_id"`
	RemoteAction      string            `json:"remote_action"`
	Device            string            `json:"device"`
	CollectorUID      string            `json:"collector_uid"`
	Instance          string            `json:"instance"`
	Params            map[string]string `json:"params"`
	Reason            string            `json:"reason"`
	ExternalReference string            `json:"external_reference"`
	Topic             string            `json:"topic"`
	Remediation       string            `json:"remediation"`
	IdempotencyKey    string            `json:"idempotency_key"`
	ExecutionID       string            `json:"execution_id"`
	Outcome           string            `json:"outcome"`
	Code              string            `json:"code"`
	Detail            string            `json:"detail"`
	DecidedAt         *time.Time        `json:"decided_at"`
}

// FromStore is the line of a stored record, its times in UTC.
func FromStore(r store.AuditRecord) Record {
	var decided *time.Time
	if r.DecidedAt != nil {
		t := r.DecidedAt.UTC()
		decided = &t
	}
	params := r.Params
	if params == nil {
		params = map[string]string{}
	}
	return Record{ID: r.ID, At: r.At.UTC(), APIKeyID: r.APIKeyID, HTTPRequestID: r.HTTPRequestID,
		RemoteAction: r.RemoteAction, Device: r.Device, CollectorUID: r.CollectorUID, Instance: r.Instance,
		Params: params, Reason: r.Reason, ExternalReference: r.ExternalReference, Topic: r.Topic,
		Remediation: r.Remediation, IdempotencyKey: r.IdempotencyKey, ExecutionID: r.ExecutionID,
		Outcome: r.Outcome, Code: r.Code, Detail: r.Detail, DecidedAt: decided}
}

// Encode writes records to w, one JSON line each.
func Encode(w io.Writer, recs ...store.AuditRecord) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(FromStore(r)); err != nil {
			return err
		}
	}
	return nil
}

// Export makes audit records durable before they are deleted. Path is a file that
// every batch is appended to, or a directory where each run (from the first Write
// to End) gets a file of its own, remote_action_audit-<UTC time>.jsonl. The files
// are created 0600: the records name employees' devices.
type Export struct {
	path string
	now  func() time.Time
	f    *os.File
}

// NewExport checks that path is a directory, or a file in one.
func NewExport(path string, now func() time.Time) (*Export, error) {
	dir := path
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("audit export %s: %s is not a directory", path, dir)
	}
	if now == nil {
		now = time.Now
	}
	return &Export{path: path, now: now}, nil
}

// Write appends records and syncs them to the disk; only when it returns nil are
// they durable. On failure the file is cut back to where it was, so it never holds
// half a line, and the records may be written again.
func (e *Export) Write(recs []store.AuditRecord) error {
	f, err := e.file()
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return e.fail(fmt.Errorf("audit export: %w", err))
	}
	var buf bytes.Buffer
	if err := Encode(&buf, recs...); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return e.undo(fi.Size(), fmt.Errorf("audit export %s: %w", f.Name(), err))
	}
	if err := f.Sync(); err != nil {
		return e.undo(fi.Size(), fmt.Errorf("audit export %s: sync: %w", f.Name(), err))
	}
	return nil
}

// End closes the run's file: a directory export starts a new file at the next Write.
func (e *Export) End() error {
	if e.f == nil {
		return nil
	}
	err := e.f.Close()
	e.f = nil
	return err
}

// file opens the file of this run, creating it (and making its directory entry
// durable) if need be.
func (e *Export) file() (*os.File, error) {
	if e.f != nil {
		return e.f, nil
	}
	path, dir := e.path, false
	if fi, err := os.Stat(e.path); err == nil && fi.IsDir() {
		dir = true
	}
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	if dir {
		path = filepath.Join(e.path, "remote_action_audit-"+e.now().UTC().Format("20060102T150405.000Z")+".jsonl")
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if err := endLine(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit export: %w", err)
	}
	e.f = f
	return f, nil
}

// endLine ends a last line left unfinished (by a crash in the middle of a write
// whose batch was then not deleted), so the next record starts a line of its own.
func endLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	r, err := os.Open(f.Name())
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.ReadAt(last, fi.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// undo cuts the file back to size after a failed write; were that to fail too, the
// file is closed so that the next Write starts afresh.
func (e *Export) undo(size int64, err error) error {
	if terr := e.f.Truncate(size); terr != nil {
		return e.fail(errors.Join(err, terr))
	}
	return err
}

func (e *Export) fail(err error) error {
	_ = e.End()
	return err
}

// syncDir makes a new file's entry in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
