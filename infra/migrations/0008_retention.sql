-- Indexes the pruner (services/pruner) finds expired rows by, so that each batch reads
-- only the rows it deletes instead of scanning whole tables. The tables already
-- indexed by the time the pruner cuts on are left as they are:
-- webhook_deliveries (processed_at), remote_action_audit (at), discovery_runs
-- (instance, started_at DESC). rate_limits gets none on purpose: its tat changes on
-- every rate-limited call, and an index on it would cost every call its HOT update;
-- the pruner walks that small table by primary key instead.

-- Final executions, by when they became final (a final execution never changes again).
CREATE INDEX executions_final ON executions (updated_at)
    WHERE status IN ('success', 'failure', 'expired', 'cancelled');

-- Idempotency keys by age, and by execution: deleting an execution deletes its key
-- (ON DELETE CASCADE), which without this index reads the whole table per execution.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_execution ON idempotency_keys (execution_id);

CREATE INDEX diagnoses_diagnosed_at ON diagnoses (diagnosed_at);

-- Proactive events by last change: those no longer open, and the open ones (pruned
-- only when much older). The pruner walks them in this order, past the events it
-- keeps, so the id is part of the key.
CREATE INDEX proactive_events_done_updated ON proactive_events (updated_at, id) WHERE status <> 'open';
CREATE INDEX proactive_events_open_updated ON proactive_events (updated_at, id) WHERE status = 'open';

-- Deleting an event sets suppressed_by to NULL in the events it suppressed
-- (ON DELETE SET NULL): without this index that is a read of the whole table for each
-- event deleted.
CREATE INDEX proactive_events_suppressed_by ON proactive_events (suppressed_by) WHERE suppressed_by IS NOT NULL;
