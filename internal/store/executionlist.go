package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExecutionPosition is where a page of executions ends: the next page starts after
// it, newest first.
type ExecutionPosition struct {
	CreatedAt time.Time
	ID        string
}

// ExecutionFilter selects executions; zero fields select all.
type ExecutionFilter struct {
	// Device is a collector UID (IsUID) or a device name, case-insensitive.
	Device string
	IsUID  bool
	// Statuses are stored statuses (ExecTriggering and the API's).
	Statuses     []string
	Since        time.Time // created at or after
	RemoteAction string
	After        *ExecutionPosition // the last one of the previous page
	Limit        int
}

// ListExecutions returns the executions f selects, newest first (by creation time,
// then id), at most f.Limit.
func (db *DB) ListExecutions(ctx context.Context, f ExecutionFilter) ([]Execution, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case f.Device != "" && f.IsUID:
		where = append(where, "collector_uid = lower("+arg(f.Device)+")")
	case f.Device != "":
		where = append(where, "lower(device_name) = lower("+arg(f.Device)+")")
	}
	if len(f.Statuses) > 0 {
		where = append(where, "status = ANY("+arg(f.Statuses)+"::text[])")
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(f.Since))
	}
	if f.RemoteAction != "" {
		where = append(where, "remote_action = "+arg(f.RemoteAction))
	}
	if f.After != nil {
		where = append(where, "(created_at, id) < ("+arg(f.After.CreatedAt)+", "+arg(f.After.ID)+")")
	}
	sql := `SELECT ` + executionColumns + ` FROM executions`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created_at DESC, id DESC LIMIT " + arg(f.Limit)
	rows, _ := db.pool.Query(ctx, sql, args...)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
	if err != nil {
		return nil, fmt.Errorf("list executions: %w", err)
	}
	return out, nil
}

// ActiveExecutions returns the executions on a device that are not final and not
// past their expiry, oldest first.
func (db *DB) ActiveExecutions(ctx context.Context, instance, collectorUID string) ([]Execution, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+executionColumns+` FROM executions
		WHERE collector_uid = $1 AND instance = $2 AND status IN `+activeStatuses+` AND expires_at > now()
		ORDER BY created_at, id`, collectorUID, instance)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
	if err != nil {
		return nil, fmt.Errorf("active executions: %w", err)
	}
	return out, nil
}
