package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tables the pruner deletes from, as its metrics and logs name them.
const (
	TableWebhookDeliveries         = "webhook_deliveries"
	TableProactiveEvents           = "proactive_events"
	TableProactiveDeliveries       = "proactive_deliveries"
	TableProactiveDeliveryAttempts = "proactive_delivery_attempts"
	TableIdempotencyKeys           = "idempotency_keys"
	TableExecutions                = "executions"
	TableExecutionStates           = "execution_states"
	TableAudit                     = "remote_action_audit"
	TableDiagnoses                 = "diagnoses"
	TableLastKnownValues           = "last_known_values"
	TableRateLimits                = "rate_limits"
	TableDiscoveryRuns             = "discovery_runs"
	TableV6Routes                  = "v6_routes"
	TableV6Engines                 = "v6_engines"
)

// PrunerLease is the exclusive right to prune, across every replica (a lease): every
// batch runs on its connection, so a pruner that lost the lease deletes nothing more.
//
// Each Prune method deletes one batch of at most limit rows of its table (and their
// dependent rows), in one short transaction of its own, so no lock is held for long.
// The rows are found through an index (migration 0008) and deleted by their ctid
// (`ctid = ANY(ARRAY(...))`, a TID scan), their dependent rows through the index on
// their foreign key: no statement reads a whole table, whatever the planner thinks of
// a join (v6_engines alone, one row per Engine, is read whole). The conditions that
// make a row prunable are written twice: once to find candidates, once more in the
// DELETE itself, which PostgreSQL re-checks on the newest version of a row changed
// since the candidates were read; a row that changed meanwhile (an event closed, a
// rate limit taken) is then left alone.
type PrunerLease struct {
	*lease
}

// TryPrunerLease takes the pruner's lease without waiting; ok is false when another
// connection holds it.
func (db *DB) TryPrunerLease(ctx context.Context) (*PrunerLease, bool, error) {
	l, ok, err := db.tryLease(ctx, "pruner", "", nil)
	if !ok {
		return nil, ok, err
	}
	return &PrunerLease{lease: l}, true, nil
}

// Pruned is what one batch did.
type Pruned struct {
	Rows map[string]int64 // rows deleted, by table
	// More is true when the batch was full: there may be more to prune right now.
	More bool
	// Next is where the next batch starts, for the prunings that walk their table
	// (proactive events, rate limits) instead of deleting every row they find.
	Next Cursor
}

// Cursor is a position in a table walked in order: (At, Key) of the last row read.
// The zero Cursor is the start.
type Cursor struct {
	At  time.Time
	Key string
}

// batch runs a pruning statement whose columns are the number of candidates found,
// then the rows deleted from each of tables in order.
func (l *PrunerLease) batch(ctx context.Context, limit int, tables []string, sql string, args ...any) (Pruned, error) {
	var found int64
	counts := make([]int64, len(tables))
	dest := []any{&found}
	for i := range counts {
		dest = append(dest, &counts[i])
	}
	if err := l.conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return Pruned{}, fmt.Errorf("prune %s: %w", tables[0], err)
	}
	p := Pruned{Rows: map[string]int64{}, More: found >= int64(limit)}
	for i, t := range tables {
		p.Rows[t] = counts[i]
	}
	return p, nil
}

// PruneWebhookDeliveries deletes dedupe records of webhooks dealt with before
// before. A sender's redelivery of such an old webhook is then processed again.
func (l *PrunerLease) PruneWebhookDeliveries(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableWebhookDeliveries}, `
		WITH c AS (SELECT ctid FROM webhook_deliveries WHERE processed_at < $1 ORDER BY processed_at LIMIT $2),
		d AS (DELETE FROM webhook_deliveries WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND processed_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// proactiveKept says which proactive events stay whatever their age: those with a
// callback delivery still pending (a chatbot is yet to be told), and the newest event
// sent about each subject and monitor (suppression reads it, whatever its window).
const proactiveKept = `(EXISTS (SELECT 1 FROM proactive_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')
	OR (e.status IN ('open', 'closed') AND NOT EXISTS (SELECT 1 FROM proactive_events n
		WHERE n.subject_key = e.subject_key AND n.monitor_key = e.monitor_key AND n.status IN ('open', 'closed')
		  AND n.created_at > e.created_at)))`

// pruneProactive walks the events that match which (a literal predicate, so that
// the partial index serves it) and changed last before before, from after, and
// deletes those not kept, with their deliveries and the deliveries' attempts.
func (l *PrunerLease) pruneProactive(ctx context.Context, which string, before time.Time, after Cursor, limit int) (Pruned, error) {
	var found, events, deliveries, attempts int64
	var next Cursor
	var lastAt *time.Time
	var lastID *string
	err := l.conn.QueryRow(ctx, `
		WITH c AS (
			SELECT e.ctid, e.id, e.updated_at, `+proactiveKept+` AS kept
			FROM proactive_events e
			WHERE `+which+` AND e.updated_at < $1 AND (e.updated_at, e.id) > ($3, $4)
			ORDER BY e.updated_at, e.id LIMIT $2),
		x AS (DELETE FROM proactive_events e WHERE e.ctid = ANY(ARRAY(SELECT ctid FROM c WHERE NOT kept))
			AND `+which+` AND e.updated_at < $1 RETURNING e.id),
		d AS (DELETE FROM proactive_deliveries WHERE event_id = ANY(ARRAY(SELECT id FROM x)) RETURNING id),
		a AS (DELETE FROM proactive_delivery_attempts WHERE delivery_id = ANY(ARRAY(SELECT id FROM d)) RETURNING 1),
		last AS (SELECT updated_at, id FROM c ORDER BY updated_at DESC, id DESC LIMIT 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM x), (SELECT count(*) FROM d), (SELECT count(*) FROM a),
			(SELECT updated_at FROM last), (SELECT id FROM last)`,
		before, limit, after.At, after.Key).Scan(&found, &events, &deliveries, &attempts, &lastAt, &lastID)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune %s: %w", TableProactiveEvents, err)
	}
	if lastAt != nil && lastID != nil {
		next = Cursor{At: *lastAt, Key: *lastID}
	}
	return Pruned{Rows: map[string]int64{TableProactiveEvents: events, TableProactiveDeliveries: deliveries,
		TableProactiveDeliveryAttempts: attempts}, More: found >= int64(limit), Next: next}, nil
}

// PruneClosedProactiveEvents deletes events that are no longer open (closed,
// suppressed, unresolved) and last changed before before, with their callback
// deliveries and attempts, except the events proactiveKept keeps.
func (l *PrunerLease) PruneClosedProactiveEvents(ctx context.Context, before time.Time, after Cursor, limit int) (Pruned, error) {
	return l.pruneProactive(ctx, `e.status <> 'open'`, before, after, limit)
}

// PruneOpenProactiveEvents deletes events still open (no recovery webhook ever closed
// them) since before, on the same terms as PruneClosedProactiveEvents.
func (l *PrunerLease) PruneOpenProactiveEvents(ctx context.Context, before time.Time, after Cursor, limit int) (Pruned, error) {
	return l.pruneProactive(ctx, `e.status = 'open'`, before, after, limit)
}

// finalExecution is the status predicate of an execution that will never change.
const finalExecution = `status IN ('success', 'failure', 'expired', 'cancelled')`

// PruneIdempotencyKeys deletes Idempotency-Key bindings made before before whose
// execution is final: a retry with such a key triggers afresh. A key of an execution
// still running stays, so that a retry cannot run the action twice.
func (l *PrunerLease) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableIdempotencyKeys}, `
		WITH c AS (SELECT k.ctid FROM idempotency_keys k
			WHERE k.created_at < $1 AND EXISTS (SELECT 1 FROM executions x WHERE x.id = k.execution_id AND x.`+finalExecution+`)
			ORDER BY k.created_at LIMIT $2),
		d AS (DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND created_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// PruneExecutions deletes final executions that became final before before, with
// their states and idempotency keys. Executions not final are never pruned. Their
// audit records stay: they have retention of their own.
func (l *PrunerLease) PruneExecutions(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableExecutions, TableExecutionStates, TableIdempotencyKeys}, `
		WITH c AS (SELECT ctid FROM executions WHERE `+finalExecution+` AND updated_at < $1 ORDER BY updated_at LIMIT $2),
		x AS (DELETE FROM executions WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND `+finalExecution+` AND updated_at < $1 RETURNING id),
		s AS (DELETE FROM execution_states WHERE execution_id = ANY(ARRAY(SELECT id FROM x)) RETURNING 1),
		k AS (DELETE FROM idempotency_keys WHERE execution_id = ANY(ARRAY(SELECT id FROM x)) RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM x), (SELECT count(*) FROM s), (SELECT count(*) FROM k)`,
		before, limit)
}

// PruneAudit deletes audit records written before before, oldest first. With export,
// the batch's records are locked and handed to export first, and deleted in the same
// transaction only once export has returned nil (it must have made them durable): a
// failing export deletes nothing. Should the commit fail after export, the records
// stay and are exported again by a later batch; their id tells the copies apart.
func (l *PrunerLease) PruneAudit(ctx context.Context, before time.Time, limit int, export func([]AuditRecord) error) (Pruned, error) {
	if export == nil {
		return l.batch(ctx, limit, []string{TableAudit}, `
			WITH c AS (SELECT ctid FROM remote_action_audit WHERE at < $1 ORDER BY at LIMIT $2),
			d AS (DELETE FROM remote_action_audit WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND at < $1 RETURNING 1)
			SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
	}
	var found int
	var deleted int64
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+auditColumns+` FROM remote_action_audit WHERE at < $1
			ORDER BY at, id LIMIT $2 FOR UPDATE`, before, limit)
		recs, err := pgx.CollectRows(rows, pgx.RowToStructByName[AuditRecord])
		if err != nil || len(recs) == 0 {
			return err
		}
		found = len(recs)
		if err := export(recs); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		ids := make([]int64, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		tag, err := tx.Exec(ctx, `DELETE FROM remote_action_audit WHERE id = ANY($1)`, ids)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("prune %s: %w", TableAudit, err)
	}
	return Pruned{Rows: map[string]int64{TableAudit: deleted}, More: found >= limit}, nil
}

// PruneDiagnoses deletes diagnoses made before before. A topic remediation only uses
// a diagnosis younger than executions.diagnosis_max_age, which the configuration
// keeps shorter than the diagnoses' retention.
func (l *PrunerLease) PruneDiagnoses(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableDiagnoses}, `
		WITH c AS (SELECT ctid FROM diagnoses WHERE diagnosed_at < $1 ORDER BY diagnosed_at LIMIT $2),
		d AS (DELETE FROM diagnoses WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND diagnosed_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// PruneLastKnownValues deletes the last known values collected before before: a
// value older than the diagnoses kept says nothing a diagnosis could still use but
// that the device has not reported since (its device may have left the fleet).
func (l *PrunerLease) PruneLastKnownValues(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableLastKnownValues}, `
		WITH c AS (SELECT ctid FROM last_known_values WHERE collected_at < $1 ORDER BY collected_at LIMIT $2),
		d AS (DELETE FROM last_known_values WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND collected_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// PruneRateLimits walks the rate-limit rows by key from after and deletes those whose
// theoretical arrival time is before before. A row whose time has passed limits
// nothing (the next call starts from now either way), so deleting it changes no
// decision; it only stops the table from keeping every key ever limited.
func (l *PrunerLease) PruneRateLimits(ctx context.Context, before time.Time, after Cursor, limit int) (Pruned, error) {
	var found, deleted int64
	var last *string
	err := l.conn.QueryRow(ctx, `
		WITH c AS (SELECT ctid, key FROM rate_limits WHERE key > $3 ORDER BY key LIMIT $2),
		d AS (DELETE FROM rate_limits WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND tat < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d), (SELECT max(key) FROM c)`,
		before, limit, after.Key).Scan(&found, &deleted, &last)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune %s: %w", TableRateLimits, err)
	}
	p := Pruned{Rows: map[string]int64{TableRateLimits: deleted}, More: found >= int64(limit)}
	if last != nil {
		p.Next = Cursor{Key: *last}
	}
	return p, nil
}

// PruneDiscoveryRuns deletes the discovery runs of each instance beyond its newest
// keep; a run still going is never deleted. The table stays small, so the window
// over it is cheap.
func (l *PrunerLease) PruneDiscoveryRuns(ctx context.Context, keep, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableDiscoveryRuns}, `
		WITH c AS (SELECT id FROM (
				SELECT id, outcome, row_number() OVER (PARTITION BY instance ORDER BY started_at DESC, id DESC) AS n
				FROM discovery_runs) r
			WHERE n > $1 AND outcome <> 'running' LIMIT $2),
		d AS (DELETE FROM discovery_runs WHERE id = ANY(ARRAY(SELECT id FROM c)) AND outcome <> 'running' RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, keep, limit)
}

// PruneV6Routes deletes the V6 routes last learned or confirmed before before: a
// discovery's export confirms the route of every device it lists, so what goes is
// the devices gone from the installation (or no longer active). A route older than
// the driver's trust (nexthinkv6.DefaultRouteTTL) is never followed anyway: deleting
// it changes no decision.
func (l *PrunerLease) PruneV6Routes(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableV6Routes}, `
		WITH c AS (SELECT ctid FROM v6_routes WHERE learned_at < $1 ORDER BY learned_at LIMIT $2),
		d AS (DELETE FROM v6_routes WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND learned_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// PruneV6Engines deletes the health of the V6 Engines neither reported nor listed
// since before: an Engine removed from the configuration, or from the Portal's
// list. An Engine in use is reported by every discovery, and again by the next
// call after its row went. The table has one row per Engine, and observed_at changes
// on every report: it has no index on it, which would cost each report its HOT
// update, and reads the whole (small) table instead.
func (l *PrunerLease) PruneV6Engines(ctx context.Context, before time.Time, limit int) (Pruned, error) {
	return l.batch(ctx, limit, []string{TableV6Engines}, `
		WITH c AS (SELECT ctid FROM v6_engines WHERE observed_at < $1 ORDER BY observed_at LIMIT $2),
		d AS (DELETE FROM v6_engines WHERE ctid = ANY(ARRAY(SELECT ctid FROM c)) AND observed_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)`, before, limit)
}

// EachAuditRecord calls fn with every audit record written in [since, until), oldest
// first, streaming them: a year of records is never held in memory. A zero bound is
// open.
func (db *DB) EachAuditRecord(ctx context.Context, since, until time.Time, fn func(AuditRecord) error) error {
	var from, to *time.Time
	if !since.IsZero() {
		from = &since
	}
	if !until.IsZero() {
		to = &until
	}
	rows, _ := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM remote_action_audit
		WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
		ORDER BY at, id`, from, to)
	defer rows.Close()
	scan := pgx.RowToStructByName[AuditRecord]
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return fmt.Errorf("audit records: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit records: %w", err)
	}
	return nil
}
