-- One active execution per device, remote action and params (services/remoteactions),
-- the listing of executions, and the key that signs its cursors.
--
-- dedupe_key is the SHA-256 (hex) of the instance, collector UID, remote action and
-- params of an execution triggered without `force`; NULL for a forced one and for the
-- executions recorded before this migration. The partial unique index below allows
-- one active (not final) execution per dedupe_key: two identical triggers at the same
-- moment, on any replicas, record one execution and call Nexthink once; the second
-- one's insert waits for the first transaction and then finds its row.
ALTER TABLE executions ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX executions_active_dedupe ON executions (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device');
-- The active executions of a device: what a trigger and a diagnosis look for.
CREATE INDEX executions_active_device ON executions (collector_uid, remote_action)
    WHERE status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device');

-- GET /api/v1/remote-actions/executions: newest first, (created_at, id) as the key of
-- its pages, for every execution or one device's (by collector UID or by name).
CREATE INDEX executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_device_created ON executions (collector_uid, created_at DESC, id DESC);
CREATE INDEX executions_device_name_created ON executions (lower(device_name), created_at DESC, id DESC);

-- A trigger answered with the active execution that already does the same thing.
ALTER TABLE remote_action_audit DROP CONSTRAINT remote_action_audit_outcome_check;
ALTER TABLE remote_action_audit ADD CONSTRAINT remote_action_audit_outcome_check
    CHECK (outcome IN ('triggering', 'triggered', 'refused', 'failed', 'replayed', 'existing'));

-- Keys dexbridge signs what it hands out with (the cursors of the execution list), one
-- per purpose, made by the first replica that needs it and shared by all.
CREATE TABLE signing_keys (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
