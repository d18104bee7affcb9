package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execution statuses as stored. ExecTriggering is dexbridge's own: the execution is
// reserved and the Remote Actions API is being called; the others are the API's.
const (
	ExecTriggering       = "triggering"
	ExecPending          = "pending"
	ExecInProgress       = "in_progress"
	ExecWaitingForDevice = "waiting_for_device"
	ExecSuccess          = "success"
	ExecFailure          = "failure"
	ExecExpired          = "expired"
	ExecCancelled        = "cancelled"
)

// Where a state change came from (execution_states.source).
const (
	SourceTrigger = "trigger"
	SourcePoller  = "poller"
	SourceExpiry  = "expiry"
)

// Audit outcomes (remote_action_audit.outcome).
const (
	AuditTriggering = "triggering"
	AuditTriggered  = "triggered"
	AuditRefused    = "refused"
	AuditFailed     = "failed"
	AuditReplayed   = "replayed"
	AuditExisting   = "existing" // answered with the active execution of the same fix
)

// Execution is a stored remote-action execution.
type Execution struct {
	ID                string            `db:"id"`
	RequestID         string            `db:"request_id"` // "" until triggered
	RemoteAction      string            `db:"remote_action"`
	Instance          string            `db:"instance"`
	CollectorUID      string            `db:"collector_uid"`
	DeviceName        string            `db:"device_name"`
	Params            map[string]string `db:"params"`
	Status            string            `db:"status"`
	StatusDetails     string            `db:"status_details"`
	Outputs           map[string]any    `db:"outputs"`
	Reason            string            `db:"reason"`
	ExternalReference string            `db:"external_reference"`
	APIKeyID          string            `db:"api_key_id"`
	Topic             string            `db:"topic"`
	Remediation       string            `db:"remediation"`
	Version           int               `db:"version"`
	CreatedAt         time.Time         `db:"created_at"`
	UpdatedAt         time.Time         `db:"updated_at"`
	ExpiresAt         time.Time         `db:"expires_at"`
	// DeviceLastSeen is when the device was last seen as dexbridge knew it when it
	// triggered the execution (nil: not known).
	DeviceLastSeen *time.Time `db:"device_last_seen"`
}

const executionColumns = `id, coalesce(request_id, '') AS request_id, remote_action, instance, collector_uid, device_name,
	params, status, status_details, outputs, reason, external_reference, api_key_id, topic, remediation, version,
	created_at, updated_at, expires_at, device_last_seen`

// ExecutionState is one state an execution went through.
type ExecutionState struct {
	Version       int            `db:"version"`
	Status        string         `db:"status"`
	StatusDetails string         `db:"status_details"`
	Outputs       map[string]any `db:"outputs"`
	Source        string         `db:"source"`
	At            time.Time      `db:"at"`
}

// AuditRecord is one row of the audit log.
type AuditRecord struct {
	ID                int64             `db:"id"`
	At                time.Time         `db:"at"`
	APIKeyID          string            `db:"api_key_id"`
	HTTPRequestID     string            `db:"http_request_id"`
	RemoteAction      string            `db:"remote_action"`
	Device            string            `db:"device"`
	CollectorUID      string            `db:"collector_uid"`
	Instance          string            `db:"instance"`
	Params            map[string]string `db:"params"`
	Reason            string            `db:"reason"`
	ExternalReference string            `db:"external_reference"`
	Topic             string            `db:"topic"`
	Remediation       string            `db:"remediation"`
	IdempotencyKey    string            `db:"idempotency_key"`
	ExecutionID       string            `db:"execution_id"`
	Outcome           string            `db:"outcome"`
	Code              string            `db:"code"`
	Detail            string            `db:"detail"`
	DecidedAt         *time.Time        `db:"decided_at"`
}

const auditColumns = `id, at, api_key_id, http_request_id, remote_action, device, collector_uid, instance, params, reason,
	external_reference, topic, remediation, idempotency_key, coalesce(execution_id, '') AS execution_id, outcome, code,
	detail, decided_at`

// IdempotencyKey binds a client's Idempotency-Key (per API key) to an execution.
type IdempotencyKey struct {
	APIKeyID    string
	Key         string
	RequestHash string
	ExecutionID string
}

// dbtx is what both the pool and a lease's own connection offer.
type dbtx interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func nonNilParams(p map[string]string) map[string]string {
	if p == nil {
		return map[string]string{}
	}
	return p
}

// RecordAudit writes an audit record whose outcome is already known (refused,
// replayed) and returns its id.
func (db *DB) RecordAudit(ctx context.Context, a AuditRecord) (int64, error) {
	id, err := insertAudit(ctx, db.pool, a)
	if err != nil {
		return 0, fmt.Errorf("record audit: %w", err)
	}
	return id, nil
}

func insertAudit(ctx context.Context, q dbtx, a AuditRecord) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO remote_action_audit (api_key_id, http_request_id, remote_action, device, collector_uid,
			instance, params, reason, external_reference, topic, remediation, idempotency_key, execution_id, outcome, code,
			detail, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, nullif($13, ''), $14, $15, $16,
			CASE WHEN $14 = 'triggering' THEN NULL ELSE now() END)
		RETURNING id`,
		a.APIKeyID, a.HTTPRequestID, a.RemoteAction, a.Device, a.CollectorUID, a.Instance, nonNilParams(a.Params), a.Reason,
		a.ExternalReference, a.Topic, a.Remediation, a.IdempotencyKey, a.ExecutionID, a.Outcome, a.Code, a.Detail).Scan(&id)
	return id, err
}

// IdempotentExecution returns the binding of an Idempotency-Key, or ErrNotFound.
func (db *DB) IdempotentExecution(ctx context.Context, apiKeyID, key string) (IdempotencyKey, error) {
	k := IdempotencyKey{APIKeyID: apiKeyID, Key: key}
	err := db.pool.QueryRow(ctx, `SELECT request_hash, execution_id FROM idempotency_keys WHERE api_key_id = $1 AND key = $2`,
		apiKeyID, key).Scan(&k.RequestHash, &k.ExecutionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("idempotency key: %w", err)
	}
	return k, nil
}

// Reservation is what ReserveExecution did.
type Reservation struct {
	// Reserved is true when e was recorded, with its audit record AuditID.
	Reserved bool
	AuditID  int64
	// Bound is the key's binding when the key was already bound: nothing was recorded.
	Bound IdempotencyKey
	// Active, when not nil, is the execution of the same remote action with the same
	// params on the same device that is still active: nothing was recorded, and the
	// key, if any, now names Active.
	Active *Execution
}

// activeStatuses are the statuses of an execution that is not final.
const activeStatuses = `('triggering', 'pending', 'in_progress', 'waiting_for_device')`

// DedupeKey is what makes two executions the same fix: the instance, the device, the
// remote action and the params (SHA-256, hex).
func DedupeKey(e Execution) string {
	raw, _ := json.Marshal(struct {
		Instance     string            `json:"instance"`
		CollectorUID string            `json:"collector_uid"`
		RemoteAction string            `json:"remote_action"`
		Params       map[string]string `json:"params"`
	}{e.Instance, e.CollectorUID, e.RemoteAction, nonNilParams(e.Params)})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// ReserveExecution records e in status triggering, with its audit record (outcome
// triggering), before the Remote Actions API is called. With a key, the key is bound
// to e in the same transaction; when the key is already bound (by an earlier or a
// concurrent trigger, on any replica), nothing is recorded and the existing binding
// is returned. A concurrent reservation of the same key waits for the other
// transaction on the primary key, then sees its row.
//
// With dedupe, an active execution of the same remote action with the same params
// on the same device (DedupeKey; one triggered with force counts too) is returned
// instead, and the key, if any, is bound to it. The partial unique index on the
// dedupe key makes this hold for concurrent reservations on any replica: the
// second insert waits for the first transaction, then finds its row.
func (db *DB) ReserveExecution(ctx context.Context, e Execution, a AuditRecord, key *IdempotencyKey, dedupe bool) (Reservation, error) {
	var res Reservation
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		res = Reservation{}
		var dedupeKey *string
		if dedupe {
			active, err := activeLike(ctx, tx, e)
			if err != nil {
				return err
			}
			if active == nil {
				k := DedupeKey(e)
				dedupeKey = &k
				// An execution past its expiry that the poller has not ended yet is
				// over for Nexthink: it gives its place up.
				if _, err := tx.Exec(ctx, `UPDATE executions SET dedupe_key = NULL
					WHERE dedupe_key = $1 AND status IN `+activeStatuses+` AND expires_at <= now()`, k); err != nil {
					return err
				}
			} else {
				res.Active = active
				return bindKey(ctx, tx, key, active.ID, &res)
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO executions (id, remote_action, instance, collector_uid, device_name, params, status,
				reason, external_reference, api_key_id, topic, remediation, created_at, updated_at, expires_at, dedupe_key, device_last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, 'triggering', $7, $8, $9, $10, $11, $12, $12, $13, $14, $15)
			ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN `+activeStatuses+` DO NOTHING`,
			e.ID, e.RemoteAction, e.Instance, e.CollectorUID, e.DeviceName, nonNilParams(e.Params), e.Reason, e.ExternalReference,
			e.APIKeyID, e.Topic, e.Remediation, e.CreatedAt, e.ExpiresAt, dedupeKey, e.DeviceLastSeen)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// A concurrent reservation of the same fix committed first.
			rows, _ := tx.Query(ctx, `SELECT `+executionColumns+` FROM executions
				WHERE dedupe_key = $1 AND status IN `+activeStatuses, *dedupeKey)
			active, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Execution])
			if err != nil {
				return fmt.Errorf("the active execution that took the dedupe key: %w", err)
			}
			res.Active = &active
			return bindKey(ctx, tx, key, active.ID, &res)
		}
		if err := bindKey(ctx, tx, key, e.ID, &res); err != nil {
			return err
		}
		a.ExecutionID, a.Outcome = e.ID, AuditTriggering
		res.AuditID, err = insertAudit(ctx, tx, a)
		res.Reserved = err == nil
		return err
	})
	if errors.Is(err, errKeyBound) {
		return Reservation{Bound: res.Bound}, nil
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve execution: %w", err)
	}
	return res, nil
}

// bindKey binds key (nil: none) to execution id; when the key is bound already, it
// puts the binding in res and returns errKeyBound, which rolls the transaction back.
func bindKey(ctx context.Context, tx pgx.Tx, key *IdempotencyKey, id string, res *Reservation) error {
	if key == nil {
		return nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (api_key_id, key, request_hash, execution_id)
		VALUES ($1, $2, $3, $4) ON CONFLICT (api_key_id, key) DO NOTHING`, key.APIKeyID, key.Key, key.RequestHash, id)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	res.Bound = IdempotencyKey{APIKeyID: key.APIKeyID, Key: key.Key}
	if err := tx.QueryRow(ctx, `SELECT request_hash, execution_id FROM idempotency_keys WHERE api_key_id = $1 AND key = $2`,
		key.APIKeyID, key.Key).Scan(&res.Bound.RequestHash, &res.Bound.ExecutionID); err != nil {
		return err
	}
	return errKeyBound
}

// activeLike returns the oldest active execution of e's remote action with e's
// params on e's device, or nil.
func activeLike(ctx context.Context, q dbtx, e Execution) (*Execution, error) {
	rows, _ := q.Query(ctx, `SELECT `+executionColumns+` FROM executions
		WHERE collector_uid = $1 AND remote_action = $2 AND instance = $3 AND params = $4::jsonb
			AND status IN `+activeStatuses+` AND expires_at > now()
		ORDER BY created_at, id LIMIT 1`, e.CollectorUID, e.RemoteAction, e.Instance, nonNilParams(e.Params))
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// errKeyBound rolls a reservation back when its key is taken.
var errKeyBound = errors.New("idempotency key already bound")

// MarkTriggered records the trigger's answer: the reserved execution becomes
// pending with Nexthink's request id and expiry, and its audit record triggered.
func (db *DB) MarkTriggered(ctx context.Context, id, requestID string, expiresAt time.Time, auditID int64) (Execution, error) {
	var out Execution
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		out, err = changeOne(ctx, tx, `request_id = $5, expires_at = $6`, id, ExecPending, "", nil, SourceTrigger,
			[]string{ExecTriggering}, requestID, expiresAt)
		if err != nil {
			return err
		}
		return decideAudit(ctx, tx, auditID, AuditTriggered, "", "")
	})
	if err != nil {
		return Execution{}, fmt.Errorf("mark execution %s triggered: %w", id, err)
	}
	return out, nil
}

// FailTrigger records a trigger that may have run but whose answer never came: the
// execution ends in failure with details, its key stays bound (a retry must not run
// the action a second time), and the audit record is failed with code and detail.
func (db *DB) FailTrigger(ctx context.Context, id, details string, auditID int64, code, detail string) (Execution, error) {
	var out Execution
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		out, err = changeOne(ctx, tx, "", id, ExecFailure, details, nil, SourceTrigger, []string{ExecTriggering})
		if err != nil {
			return err
		}
		return decideAudit(ctx, tx, auditID, AuditFailed, code, detail)
	})
	if err != nil {
		return Execution{}, fmt.Errorf("fail execution %s: %w", id, err)
	}
	return out, nil
}

// ReleaseExecution forgets a reserved execution whose trigger certainly did not run
// (the tenant refused it, or it never reached the tenant): the execution and its key
// go, so a retry with the same key triggers afresh; the audit record stays, failed.
func (db *DB) ReleaseExecution(ctx context.Context, id string, auditID int64, code, detail string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM executions WHERE id = $1 AND status = 'triggering'`, id); err != nil {
			return err
		}
		return decideAudit(ctx, tx, auditID, AuditFailed, code, detail)
	})
	if err != nil {
		return fmt.Errorf("release execution %s: %w", id, err)
	}
	return nil
}

func decideAudit(ctx context.Context, tx pgx.Tx, id int64, outcome, code, detail string) error {
	if id == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE remote_action_audit SET outcome = $2, code = $3, detail = $4, decided_at = now() WHERE id = $1`,
		id, outcome, code, detail)
	return err
}

// changeOne moves execution id to status (from one of from) with details and
// outputs, bumps its version and records the state, all in tx. set adds assignments
// using $5 onwards (extra). It returns ErrNotFound when the execution is not in one
// of from.
func changeOne(ctx context.Context, tx pgx.Tx, set, id, status, details string, outputs map[string]any, source string, from []string, extra ...any) (Execution, error) {
	if set != "" {
		set = ", " + set
	}
	args := append([]any{id, status, details, outputs}, extra...)
	n := len(args) + 1
	args = append(args, from, source)
	rows, _ := tx.Query(ctx, fmt.Sprintf(`
		WITH u AS (
			UPDATE executions SET status = $2, status_details = $3, outputs = coalesce($4::jsonb, outputs),
				version = version + 1, updated_at = now()%s
			WHERE id = $1 AND status = ANY($%d::text[])
			RETURNING *),
		s AS (INSERT INTO execution_states (execution_id, version, status, status_details, outputs, source, at)
			SELECT id, version, status, status_details, outputs, $%d, updated_at FROM u)
		SELECT `+executionColumns+` FROM u`, set, n, n+1), args...)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Execution])
	if errors.Is(err, pgx.ErrNoRows) {
		return Execution{}, ErrNotFound
	}
	return e, err
}

// Execution returns the execution with id, or ErrNotFound.
func (db *DB) Execution(ctx context.Context, id string) (Execution, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+executionColumns+` FROM executions WHERE id = $1`, id)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Execution])
	if errors.Is(err, pgx.ErrNoRows) {
		return Execution{}, ErrNotFound
	}
	if err != nil {
		return Execution{}, fmt.Errorf("execution %s: %w", id, err)
	}
	return e, nil
}

// ExecutionStates returns the states an execution went through, first to last.
func (db *DB) ExecutionStates(ctx context.Context, id string) ([]ExecutionState, error) {
	rows, _ := db.pool.Query(ctx, `SELECT version, status, status_details, outputs, source, at
		FROM execution_states WHERE execution_id = $1 ORDER BY version`, id)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ExecutionState])
	if err != nil {
		return nil, fmt.Errorf("execution states %s: %w", id, err)
	}
	return out, nil
}

// AuditRecords returns the newest audit records, at most limit, newest first.
func (db *DB) AuditRecords(ctx context.Context, limit int) ([]AuditRecord, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM remote_action_audit ORDER BY id DESC LIMIT $1`, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[AuditRecord])
	if err != nil {
		return nil, fmt.Errorf("audit records: %w", err)
	}
	return out, nil
}

// CountOpenExecutions counts the executions of an instance that are not final.
func (db *DB) CountOpenExecutions(ctx context.Context, instance string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM executions
		WHERE instance = $1 AND status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device')`, instance).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open executions: %w", err)
	}
	return n, nil
}

// PollerLease is the exclusive right to poll one instance's executions, across every
// replica (a lease): the poller reads and writes through its connection.
type PollerLease struct {
	*lease
	instance string
}

// TryPollerLease takes the lease of instance without waiting; ok is false when
// another connection holds it.
func (db *DB) TryPollerLease(ctx context.Context, instance string) (*PollerLease, bool, error) {
	l, ok, err := db.tryLease(ctx, "poller", instance, nil)
	if !ok {
		return nil, ok, err
	}
	return &PollerLease{lease: l, instance: instance}, true, nil
}

// Instance is the instance the lease is for.
func (l *PollerLease) Instance() string { return l.instance }

// OpenExecutions returns the instance's triggered executions that are not final,
// oldest first, at most limit.
func (l *PollerLease) OpenExecutions(ctx context.Context, limit int) ([]Execution, error) {
	rows, _ := l.conn.Query(ctx, `SELECT `+executionColumns+` FROM executions
		WHERE instance = $1 AND status IN ('pending', 'in_progress', 'waiting_for_device') AND request_id IS NOT NULL
		ORDER BY created_at LIMIT $2`, l.instance, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
	if err != nil {
		return nil, fmt.Errorf("open executions of %s: %w", l.instance, err)
	}
	return out, nil
}

// ExecutionChange is a new state for an execution.
type ExecutionChange struct {
	ID            string
	Status        string
	StatusDetails string
	Outputs       map[string]any // nil keeps the current outputs
	Source        string         // SourcePoller or SourceExpiry
}

// Apply records changes in one transaction and returns the executions that did
// change. A change is applied only to an execution that is not final and whose
// status, details or outputs differ, so applying the same change twice records it
// once.
func (l *PollerLease) Apply(ctx context.Context, changes []ExecutionChange) ([]Execution, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	var out []Execution
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, c := range changes {
			b.Queue(`
				WITH u AS (
					UPDATE executions SET status = $2, status_details = $3, outputs = coalesce($4::jsonb, outputs),
						version = version + 1, updated_at = now()
					WHERE id = $1 AND instance = $6 AND status IN ('pending', 'in_progress', 'waiting_for_device')
						AND (status, status_details, coalesce(outputs, 'null'::jsonb))
							IS DISTINCT FROM ($2, $3, coalesce($4::jsonb, outputs, 'null'::jsonb))
					RETURNING *),
				s AS (INSERT INTO execution_states (execution_id, version, status, status_details, outputs, source, at)
					SELECT id, version, status, status_details, outputs, $5, updated_at FROM u)
				SELECT `+executionColumns+` FROM u`, c.ID, c.Status, c.StatusDetails, c.Outputs, c.Source, l.instance)
		}
		br := tx.SendBatch(ctx, b)
		for range changes {
			rows, err := br.Query()
			if err != nil {
				_ = br.Close()
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
			if err != nil {
				_ = br.Close()
				return err
			}
			out = append(out, got...)
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("apply execution changes of %s: %w", l.instance, err)
	}
	return out, nil
}

// FailStale ends the executions of the instance left in triggering since before
// cutoff (their process died during the call to Nexthink: whether the action runs is
// unknown) as failures with details, and marks their audit records failed.
func (l *PollerLease) FailStale(ctx context.Context, cutoff time.Time, details string) ([]Execution, error) {
	var out []Execution
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			WITH u AS (
				UPDATE executions SET status = 'failure', status_details = $3, version = version + 1, updated_at = now()
				WHERE instance = $1 AND status = 'triggering' AND created_at < $2
				RETURNING *),
			s AS (INSERT INTO execution_states (execution_id, version, status, status_details, outputs, source, at)
				SELECT id, version, status, status_details, outputs, 'expiry', updated_at FROM u),
			a AS (UPDATE remote_action_audit SET outcome = 'failed', code = 'timeout', detail = $3, decided_at = now()
				WHERE execution_id IN (SELECT id FROM u) AND outcome = 'triggering')
			SELECT `+executionColumns+` FROM u`, l.instance, cutoff, details)
		var err error
		out, err = pgx.CollectRows(rows, pgx.RowToStructByName[Execution])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fail stale executions of %s: %w", l.instance, err)
	}
	return out, nil
}
