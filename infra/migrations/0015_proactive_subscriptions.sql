-- Runtime subscriptions to proactive events: each chatbot registers a URL, optional
-- filters and a locale, and gets deliveries signed with its own secret (Standard
-- Webhooks). The callback configured in the environment is the subscription
-- 'sub_config', kept in step with the configuration at start; its secret stays in the
-- configuration (secret is NULL).
CREATE TABLE proactive_subscriptions (
    id                   text PRIMARY KEY,             -- sub_...
    origin               text NOT NULL CHECK (origin IN ('api', 'config')),
    url                  text NOT NULL,
    secret               text,                         -- whsec_<base64>; NULL for the configured callback
    monitors             text[] NOT NULL DEFAULT '{}', -- empty: every monitor (matched case-insensitively)
    topics               text[] NOT NULL DEFAULT '{}', -- empty: every topic
    instances            text[] NOT NULL DEFAULT '{}', -- empty: every instance
    locale               text NOT NULL DEFAULT 'en',   -- BCP 47
    state                text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    failures             integer NOT NULL DEFAULT 0,   -- failed attempts since the last success
    last_error           text,
    last_failure_at      timestamptz,
    last_success_at      timestamptz,
    paused_at            timestamptz,
    created_by           text,                         -- the API key that created it
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- A delivery now goes to one subscription. Deliveries enqueued before belong to the
-- configured callback, which is the only one that existed. attempt_floor is the
-- attempt count when a paused subscription was resumed: a resumed delivery gets a
-- whole new set of attempts while attempts stays the fencing token of a claim.
ALTER TABLE proactive_deliveries ADD COLUMN subscription_id text REFERENCES proactive_subscriptions (id) ON DELETE CASCADE;
ALTER TABLE proactive_deliveries ADD COLUMN attempt_floor integer NOT NULL DEFAULT 0;
ALTER TABLE proactive_deliveries ADD COLUMN locale text NOT NULL DEFAULT 'en';
INSERT INTO proactive_subscriptions (id, origin, url)
    SELECT 'sub_config', 'config', '' WHERE EXISTS (SELECT 1 FROM proactive_deliveries);
UPDATE proactive_deliveries SET subscription_id = 'sub_config';
ALTER TABLE proactive_deliveries ALTER COLUMN subscription_id SET NOT NULL;
CREATE INDEX proactive_deliveries_subscription ON proactive_deliveries (subscription_id, state);
