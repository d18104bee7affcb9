-- Webhooks and proactive conversations.
--
-- webhook_deliveries is the durable dedupe record: one row per webhook the worker has
-- dealt with, keyed by its dedupe key, written in the same transaction as the
-- webhook's effects. JetStream forgets duplicates after its window; this does not.
CREATE TABLE webhook_deliveries (
    dedupe_key   text PRIMARY KEY,
    webhook_id   text NOT NULL,                 -- wh_..., the id the sender was given
    source       text NOT NULL,
    delivery_id  text,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('processed', 'ignored', 'invalid', 'failed')),
    monitor      text,
    alert_status text,
    detail       text,                          -- why ignored, invalid or failed
    deliveries   integer NOT NULL DEFAULT 1,    -- JetStream deliveries it took
    payload      jsonb                          -- kept for invalid and failed webhooks only
);
CREATE INDEX webhook_deliveries_processed_at ON webhook_deliveries (processed_at);

-- Proactive events: who to talk to, on which device, about which alert. Events that
-- go out (open, then closed) have a feed position; suppressed and unresolved ones are
-- recorded for the operator and never sent.
CREATE TABLE proactive_events (
    id             text PRIMARY KEY,            -- pe_...
    feed_seq       bigint UNIQUE,               -- position in the feed; moves when the event closes
    status         text NOT NULL CHECK (status IN ('open', 'closed', 'suppressed', 'unresolved')),
    source         text NOT NULL,
    webhook_id     text NOT NULL,
    dedupe_key     text NOT NULL,               -- the webhook that opened it (webhook_deliveries)
    monitor        text NOT NULL,
    monitor_key    text NOT NULL,               -- lower(monitor)
    topic          text,
    subject_key    text NOT NULL,               -- user:<name> or device:<name>, the suppression subject
    user_name      text,
    user_upn       text,
    device_name    text,
    collector_uid  text,
    instance       text,
    platform       text,
    alert          jsonb NOT NULL,
    diagnosis      jsonb,
    remediations   jsonb,
    message        text NOT NULL,
    close_message  text,
    suppressed_by  text REFERENCES proactive_events (id) ON DELETE SET NULL,
    closed_by      text,                        -- dedupe key of the recovery webhook
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    acked_at       timestamptz,
    acked_by       text
);
CREATE INDEX proactive_events_suppression ON proactive_events (subject_key, monitor_key, created_at DESC)
    WHERE status IN ('open', 'closed');
CREATE INDEX proactive_events_open_device ON proactive_events (source, monitor_key, lower(device_name)) WHERE status = 'open';
CREATE INDEX proactive_events_open_user ON proactive_events (source, monitor_key, lower(user_name)) WHERE status = 'open';
CREATE INDEX proactive_events_dedupe ON proactive_events (dedupe_key);

-- The feed's counter. Writers take the next positions from this one row at the end of
-- their transaction, so positions are handed out in commit order and a reader that
-- resumes after a position never misses an event committed later with a smaller one.
CREATE TABLE proactive_feed (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);
INSERT INTO proactive_feed (id, seq) VALUES (1, 0);

-- The callback outbox: one row per event change to deliver. Dispatchers on every
-- replica claim due rows with FOR UPDATE SKIP LOCKED and a lease; attempts is the
-- fencing token of a claim.
CREATE TABLE proactive_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL REFERENCES proactive_events (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('opened', 'closed')),
    body            text NOT NULL,              -- the JSON sent, the same on every attempt
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX proactive_deliveries_due ON proactive_deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX proactive_deliveries_event ON proactive_deliveries (event_id);

-- Every callback attempt, with its outcome.
CREATE TABLE proactive_delivery_attempts (
    delivery_id bigint NOT NULL REFERENCES proactive_deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    status      integer,                        -- HTTP status; null when no answer
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
