-- Remote-action executions, every state they went through, the idempotency keys of
-- the triggers, and the audit log of every trigger (services/remoteactions,
-- services/poller).
--
-- An execution is one remote action on one device. It is reserved ('triggering')
-- before the Remote Actions API is called, so that an Idempotency-Key is bound to it
-- before anything can run; the trigger's answer makes it 'pending' with Nexthink's
-- request id. The API never shows 'triggering': it reads as pending.
CREATE TABLE executions (
    id                 text PRIMARY KEY,            -- ex_<32 hex>
    request_id         text,                        -- Nexthink's requestId, once triggered
    remote_action      text NOT NULL,               -- NQL id, "#set_outlook_online"
    instance           text NOT NULL,
    collector_uid      text NOT NULL,
    device_name        text NOT NULL,
    params             jsonb NOT NULL DEFAULT '{}',
    status             text NOT NULL CHECK (status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device',
                                                       'success', 'failure', 'expired', 'cancelled')),
    status_details     text NOT NULL DEFAULT '',
    outputs            jsonb,
    reason             text NOT NULL DEFAULT '',
    external_reference text NOT NULL DEFAULT '',
    api_key_id         text NOT NULL DEFAULT '',    -- who triggered it ('' inside dexbridge)
    topic              text NOT NULL DEFAULT '',    -- the topic remediation that ran it, if one did
    remediation        text NOT NULL DEFAULT '',
    version            integer NOT NULL DEFAULT 1,  -- +1 per state change; events carry it in Nats-Msg-Id
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL         -- created_at + expiresInMinutes
);
CREATE UNIQUE INDEX executions_request ON executions (instance, request_id) WHERE request_id IS NOT NULL;
-- What the poller of an instance reads every tick.
CREATE INDEX executions_open ON executions (instance, created_at)
    WHERE status IN ('triggering', 'pending', 'in_progress', 'waiting_for_device');

-- Every state an execution went through, first to last.
CREATE TABLE execution_states (
    execution_id   text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    version        integer NOT NULL,
    status         text NOT NULL,
    status_details text NOT NULL DEFAULT '',
    outputs        jsonb,
    source         text NOT NULL CHECK (source IN ('trigger', 'poller', 'expiry')),
    at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, version)
);

-- Idempotency-Key of a trigger, per API key. Inserted with the execution's
-- reservation, before the Remote Actions API is called: the primary key makes a
-- second trigger with the same key, on any replica and at the same moment, find the
-- first one's execution instead of running the action again. request_hash is the
-- SHA-256 of what the request asks for (not of how long it waits).
CREATE TABLE idempotency_keys (
    api_key_id   text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);

-- The audit log: one row per trigger asked of dexbridge, whatever became of it.
-- outcome: triggering (the call to Nexthink is in flight, or its process died
-- during it), triggered, refused (by dexbridge: code and detail say why), failed (by
-- the tenant or on the way to it), replayed (an Idempotency-Key matched).
CREATE TABLE remote_action_audit (
    id                 bigserial PRIMARY KEY,
    at                 timestamptz NOT NULL DEFAULT now(),
    api_key_id         text NOT NULL DEFAULT '',
    http_request_id    text NOT NULL DEFAULT '',
    remote_action      text NOT NULL,
    device             text NOT NULL,               -- as asked: a name or a collector UID
    collector_uid      text NOT NULL DEFAULT '',
    instance           text NOT NULL DEFAULT '',
    params             jsonb NOT NULL DEFAULT '{}',
    reason             text NOT NULL DEFAULT '',
    external_reference text NOT NULL DEFAULT '',
    topic              text NOT NULL DEFAULT '',
    remediation        text NOT NULL DEFAULT '',
    idempotency_key    text NOT NULL DEFAULT '',
    execution_id       text,                        -- no foreign key: the log outlives executions
    outcome            text NOT NULL CHECK (outcome IN ('triggering', 'triggered', 'refused', 'failed', 'replayed')),
    code               text NOT NULL DEFAULT '',    -- problem code of a refusal or failure
    detail             text NOT NULL DEFAULT '',
    decided_at         timestamptz
);
CREATE INDEX remote_action_audit_at ON remote_action_audit (at);
CREATE INDEX remote_action_audit_execution ON remote_action_audit (execution_id) WHERE execution_id IS NOT NULL;
