package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DiscoveryLease is the exclusive right to discover one instance, across every
// replica (a lease). The connection also holds the run's staging tables (temporary,
// so private to it), and the swap runs on it, so a lost connection loses the lock and
// the staged rows together and the swap cannot commit without the lock; releasing the
// lease drops the staging tables.
type DiscoveryLease struct {
	*lease
	instance string
}

// stagingBuffers is the session's memory for temporary tables: the staging of a
// large instance (500 000 devices is about 300 MB) stays mostly in memory.
const stagingBuffers = "256MB"

// TryDiscoveryLease takes the lease of instance without waiting. ok is false when
// another connection (another replica, or another run here) holds it.
func (db *DB) TryDiscoveryLease(ctx context.Context, instance string) (*DiscoveryLease, bool, error) {
	// A load of a large instance runs longer than database.statement_timeout allows the
	// pool's short queries: the run's own context bounds it instead.
	l, ok, err := db.tryLease(ctx, "discovery", instance, map[string]string{"temp_buffers": stagingBuffers, "statement_timeout": "0"})
	if !ok {
		return nil, ok, err
	}
	return &DiscoveryLease{lease: l, instance: instance}, true, nil
}

// Instance is the instance the lease is for.
func (l *DiscoveryLease) Instance() string { return l.instance }

// ResetStaging creates the staging tables, or empties them for a new attempt.
func (l *DiscoveryLease) ResetStaging(ctx context.Context) error {
	_, err := l.conn.Exec(ctx, `
		CREATE TEMP TABLE IF NOT EXISTS stage_devices (
			collector_uid text, uid text, name text, platform text, os_name text, os_version text,
			hardware_type text, hardware_manufacturer text, hardware_model text, last_seen timestamptz,
			last_logon_user text, last_logon_time timestamptz, fields text);
		CREATE TEMP TABLE IF NOT EXISTS stage_users (name text, upn text, sid text, email text, full_name text);
		CREATE TEMP TABLE IF NOT EXISTS stage_activity (collector_uid text, user_name text, last_activity timestamptz);
		TRUNCATE stage_devices, stage_users, stage_activity`)
	if err != nil {
		return fmt.Errorf("discovery %s: reset staging: %w", l.instance, err)
	}
	return nil
}

// StagedDevice is a device as an export delivers it. Empty strings are nulls.
type StagedDevice struct {
	CollectorUID, UID, Name, Platform, OSName, OSVersion string
	HardwareType, HardwareManufacturer, HardwareModel    string
	LastSeen                                             *time.Time
	LastLogonUser                                        string
	LastLogonTime                                        *time.Time
	Fields                                               []byte // JSON object of the cached fields
}

// StagedUser is a user as an export delivers it.
type StagedUser struct {
	Name, UPN, SID, Email, FullName string
}

// StagedActivity is a user's latest activity on a device, as an export delivers it.
type StagedActivity struct {
	CollectorUID, UserName string
	LastActivity           *time.Time
}

// CopyDevices streams devices into staging with COPY. next returns nil at the end.
func (l *DiscoveryLease) CopyDevices(ctx context.Context, next func() (*StagedDevice, error)) (int64, error) {
	cols := []string{"collector_uid", "uid", "name", "platform", "os_name", "os_version", "hardware_type",
		"hardware_manufacturer", "hardware_model", "last_seen", "last_logon_user", "last_logon_time", "fields"}
	row := make([]any, len(cols))
	return l.copy(ctx, "stage_devices", cols, func() ([]any, error) {
		d, err := next()
		if d == nil || err != nil {
			return nil, err
		}
		row[0], row[1], row[2], row[3] = d.CollectorUID, null(d.UID), d.Name, null(d.Platform)
		row[4], row[5], row[6] = null(d.OSName), null(d.OSVersion), null(d.HardwareType)
		row[7], row[8], row[9] = null(d.HardwareManufacturer), null(d.HardwareModel), d.LastSeen
		row[10], row[11], row[12] = null(d.LastLogonUser), d.LastLogonTime, string(d.Fields)
		return row, nil
	})
}

// CopyUsers streams users into staging with COPY. next returns nil at the end.
func (l *DiscoveryLease) CopyUsers(ctx context.Context, next func() (*StagedUser, error)) (int64, error) {
	row := make([]any, 5)
	return l.copy(ctx, "stage_users", []string{"name", "upn", "sid", "email", "full_name"}, func() ([]any, error) {
		u, err := next()
		if u == nil || err != nil {
			return nil, err
		}
		row[0], row[1], row[2], row[3], row[4] = u.Name, null(u.UPN), null(u.SID), null(u.Email), null(u.FullName)
		return row, nil
	})
}

// CopyActivity streams user-device activity into staging with COPY. next returns nil
// at the end.
func (l *DiscoveryLease) CopyActivity(ctx context.Context, next func() (*StagedActivity, error)) (int64, error) {
	row := make([]any, 3)
	return l.copy(ctx, "stage_activity", []string{"collector_uid", "user_name", "last_activity"}, func() ([]any, error) {
		a, err := next()
		if a == nil || err != nil {
			return nil, err
		}
		row[0], row[1], row[2] = a.CollectorUID, a.UserName, a.LastActivity
		return row, nil
	})
}

func (l *DiscoveryLease) copy(ctx context.Context, table string, cols []string, next func() ([]any, error)) (int64, error) {
	n, err := l.conn.CopyFrom(ctx, pgx.Identifier{"pg_temp", table}, cols, pgx.CopyFromFunc(next))
	if err != nil {
		return n, fmt.Errorf("discovery %s: copy into %s: %w", l.instance, table, err)
	}
	return n, nil
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SwapCounts are the rows an instance has in the cache after a swap.
type SwapCounts struct {
	Devices, Users, Activities int64
}

// Swap replaces the instance's cached rows with the staged ones in one transaction,
// and marks the instance up: BeginSwap, then Finish.
func (l *DiscoveryLease) Swap(ctx context.Context, cutoff, asOf time.Time) (SwapCounts, error) {
	s, err := l.BeginSwap(ctx, cutoff, asOf)
	if err != nil {
		return SwapCounts{}, err
	}
	return s.Finish(ctx)
}

// SwapTx is a swap in progress: a transaction on the lease's connection that has
// replaced the instance's devices and not yet its activity and users. Until Finish
// commits it, readers see the previous load (nothing here blocks them: only
// discovery writes these rows). The staging tables may still be loaded meanwhile,
// on the same connection, inside the transaction: discovery starts the swap as soon
// as the device exports are staged, while the activity exports still run.
type SwapTx struct {
	l            *DiscoveryLease
	tx           pgx.Tx
	cutoff, asOf time.Time
	devices      int64
}

// BeginSwap opens the swap's transaction, marks the instance up, removes its cached
// rows and loads its staged devices: those seen since cutoff (asOf is recorded as
// the rows' refresh time). The caller must Finish or Rollback it.
func (l *DiscoveryLease) BeginSwap(ctx context.Context, cutoff, asOf time.Time) (*SwapTx, error) {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: swap: %w", l.instance, err)
	}
	s := &SwapTx{l: l, tx: tx, cutoff: cutoff, asOf: asOf}
	if err := s.devicesStep(ctx); err != nil {
		s.Rollback(ctx)
		return nil, fmt.Errorf("discovery %s: swap: %w", l.instance, err)
	}
	return s, nil
}

func (s *SwapTx) devicesStep(ctx context.Context) error {
	tx, l := s.tx, s.l
	// Every statement of the swap joins or groups whole tables: hash joins and hash
	// aggregates in memory. Temporary tables have no statistics, and a nested loop
	// chosen on a wrong guess would be quadratic.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '128MB'; SET LOCAL enable_nestloop = off`); err != nil {
		return err
	}
	if err := upsertInstanceUp(ctx, tx, l.instance); err != nil {
		return err
	}
	for _, table := range []string{"user_devices", "users", "devices"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE instance = $1`, l.instance); err != nil {
			return fmt.Errorf("clear %s: %w", table, err)
		}
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO devices (collector_uid, instance, uid, name, platform, os_name, os_version, hardware_type,
			hardware_manufacturer, hardware_model, last_seen, last_logon_user, last_logon_time, fields, refreshed_at)
		SELECT lower(collector_uid), $1, uid, name, platform, os_name, os_version,
			hardware_type, hardware_manufacturer, hardware_model, last_seen, last_logon_user, last_logon_time,
			coalesce(fields, '{}')::jsonb, $3
		FROM stage_devices
		WHERE collector_uid <> '' AND name <> '' AND (last_seen IS NULL OR last_seen >= $2)
		ON CONFLICT DO NOTHING`, l.instance, s.cutoff, s.asOf)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	s.devices = tag.RowsAffected()
	return nil
}

// Rollback abandons the swap: the previous load stays. Best effort (a broken
// connection rolls back by itself).
func (s *SwapTx) Rollback(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.tx.Rollback(rctx)
}

// Finish loads the staged activity and users and commits. It keeps the latest
// activity per user and device since the cutoff, the last logged-on user (if since
// the cutoff) of a device without activity, and the users with activity left;
// everything older is pruned. The tables are analysed afterwards. On an error the
// swap is rolled back.
func (s *SwapTx) Finish(ctx context.Context) (SwapCounts, error) {
	c, err := s.finish(ctx)
	if err != nil {
		s.Rollback(ctx)
		return SwapCounts{}, fmt.Errorf("discovery %s: swap: %w", s.l.instance, err)
	}
	// Fresh statistics, so that look-ups use the indexes at once rather than after
	// autovacuum's next pass. Best effort: the data is committed either way.
	_, _ = s.l.conn.Exec(ctx, `ANALYZE devices, users, user_devices`)
	return c, nil
}

func (s *SwapTx) finish(ctx context.Context) (SwapCounts, error) {
	tx, instance, cutoff := s.tx, s.l.instance, s.cutoff
	c := SwapCounts{Devices: s.devices}
	tag, err := tx.Exec(ctx, `
		INSERT INTO user_devices (instance, user_key, collector_uid, last_activity, source)
		SELECT $1, lower(a.user_name), lower(a.collector_uid), max(a.last_activity), 'session'
		FROM stage_activity a
		JOIN devices d ON d.collector_uid = lower(a.collector_uid) AND d.instance = $1
		WHERE a.user_name <> '' AND a.last_activity >= $2
		GROUP BY lower(a.user_name), lower(a.collector_uid)`, instance, cutoff)
	if err != nil {
		return c, fmt.Errorf("load activity: %w", err)
	}
	c.Activities = tag.RowsAffected()
	tag, err = tx.Exec(ctx, `
		INSERT INTO user_devices (instance, user_key, collector_uid, last_activity, source)
		SELECT $1, lower(d.last_logon_user), d.collector_uid, d.last_logon_time, 'last_logon'
		FROM devices d
		WHERE d.instance = $1 AND d.last_logon_user <> '' AND d.last_logon_time >= $2
		  AND NOT EXISTS (SELECT 1 FROM user_devices ud WHERE ud.instance = $1 AND ud.collector_uid = d.collector_uid)`,
		instance, cutoff)
	if err != nil {
		return c, fmt.Errorf("load last logons: %w", err)
	}
	c.Activities += tag.RowsAffected()
	// Users whose last activity is older than the period have no user_devices row
	// left, so they are not loaded: that is the pruning of users. A user the users
	// export lacks keeps the name its devices' last logon gives. (A duplicate in
	// an export keeps its first row.)
	tag, err = tx.Exec(ctx, `
		INSERT INTO users (instance, name, upn, sid, email, full_name, last_activity, refreshed_at)
		SELECT $1, coalesce(s.name, l.name, a.user_key), s.upn, upper(s.sid), s.email, s.full_name, a.last_activity, $2
		FROM (SELECT user_key, max(last_activity) AS last_activity FROM user_devices
			WHERE instance = $1 GROUP BY user_key) a
		LEFT JOIN stage_users s ON lower(s.name) = a.user_key
		LEFT JOIN (SELECT lower(last_logon_user) AS key, min(last_logon_user) AS name
			FROM devices WHERE instance = $1 AND last_logon_user <> '' GROUP BY 1) l ON l.key = a.user_key
		ON CONFLICT DO NOTHING`,
		instance, s.asOf)
	if err != nil {
		return c, fmt.Errorf("load users: %w", err)
	}
	c.Users = tag.RowsAffected()
	return c, tx.Commit(ctx)
}

// DiscoveryRun is one run of discovery on an instance.
type DiscoveryRun struct {
	ID         int64      `db:"id"`
	Instance   string     `db:"instance"`
	Trigger    string     `db:"trigger"`
	StartedAt  time.Time  `db:"started_at"`
	EndedAt    *time.Time `db:"ended_at"`
	Outcome    string     `db:"outcome"`
	Attempts   int        `db:"attempts"`
	Devices    *int64     `db:"devices"`
	Users      *int64     `db:"users"`
	Activities *int64     `db:"activities"`
	DataAsOf   *time.Time `db:"data_as_of"`
	Error      *string    `db:"error"`
}

// Outcomes of a discovery run.
const (
	RunRunning   = "running"
	RunSuccess   = "success"
	RunFailure   = "failure"
	RunCancelled = "cancelled"
	RunAbandoned = "abandoned" // its replica went away without finishing it
)

const runColumns = `id, instance, trigger, started_at, ended_at, outcome, attempts, devices, users, activities, data_as_of, error`

// StartDiscoveryRun records a run that begins now. Call it holding the instance's
// lease: runs left 'running' by a replica that went away are marked abandoned first.
func (l *DiscoveryLease) StartDiscoveryRun(ctx context.Context, trigger string) (DiscoveryRun, error) {
	if _, err := l.conn.Exec(ctx, `UPDATE discovery_runs SET outcome = 'abandoned', ended_at = now()
		WHERE instance = $1 AND outcome = 'running'`, l.instance); err != nil {
		return DiscoveryRun{}, fmt.Errorf("discovery %s: close abandoned runs: %w", l.instance, err)
	}
	rows, _ := l.conn.Query(ctx, `INSERT INTO discovery_runs (instance, trigger) VALUES ($1, $2) RETURNING `+runColumns,
		l.instance, trigger)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("discovery %s: record run: %w", l.instance, err)
	}
	return run, nil
}

// RunEnd is how a run ended.
type RunEnd struct {
	Outcome  string
	Attempts int
	Counts   *SwapCounts
	DataAsOf *time.Time
	Error    string
}

// FinishDiscoveryRun records the end of run id.
func (db *DB) FinishDiscoveryRun(ctx context.Context, id int64, end RunEnd) (DiscoveryRun, error) {
	var devices, users, activities *int64
	if c := end.Counts; c != nil {
		devices, users, activities = &c.Devices, &c.Users, &c.Activities
	}
	var errText *string
	if end.Error != "" {
		errText = &end.Error
	}
	rows, _ := db.pool.Query(ctx, `UPDATE discovery_runs SET ended_at = now(), outcome = $2, attempts = $3,
			devices = $4, users = $5, activities = $6, data_as_of = $7, error = $8
		WHERE id = $1 RETURNING `+runColumns, id, end.Outcome, end.Attempts, devices, users, activities, end.DataAsOf, errText)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("finish discovery run %d: %w", id, err)
	}
	return run, nil
}

// LastDiscoveryRun is the latest run of instance, or ErrNotFound.
func (db *DB) LastDiscoveryRun(ctx context.Context, instance string) (DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+runColumns+` FROM discovery_runs WHERE instance = $1
		ORDER BY started_at DESC, id DESC LIMIT 1`, instance)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if errors.Is(err, pgx.ErrNoRows) {
		return DiscoveryRun{}, ErrNotFound
	}
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("last discovery run of %s: %w", instance, err)
	}
	return run, nil
}

// LatestDiscoveryRuns returns, per instance, its latest run and its latest successful
// run (nil when it has none).
func (db *DB) LatestDiscoveryRuns(ctx context.Context) (map[string]DiscoveryRun, map[string]DiscoveryRun, error) {
	latest, err := db.runsPerInstance(ctx, `SELECT DISTINCT ON (instance) `+runColumns+` FROM discovery_runs
		ORDER BY instance, started_at DESC, id DESC`)
	if err != nil {
		return nil, nil, err
	}
	good, err := db.runsPerInstance(ctx, `SELECT DISTINCT ON (instance) `+runColumns+` FROM discovery_runs
		WHERE outcome = 'success' ORDER BY instance, started_at DESC, id DESC`)
	return latest, good, err
}

func (db *DB) runsPerInstance(ctx context.Context, sql string) (map[string]DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, sql)
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return nil, fmt.Errorf("discovery runs: %w", err)
	}
	out := make(map[string]DiscoveryRun, len(runs))
	for _, r := range runs {
		out[r.Instance] = r
	}
	return out, nil
}

// DiscoveryRuns lists the runs of instance, newest first (at most limit).
func (db *DB) DiscoveryRuns(ctx context.Context, instance string, limit int) ([]DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+runColumns+` FROM discovery_runs WHERE instance = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, instance, limit)
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return nil, fmt.Errorf("discovery runs of %s: %w", instance, err)
	}
	return runs, nil
}
