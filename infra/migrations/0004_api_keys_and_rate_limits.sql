-- API keys: only a SHA-256 hash of the secret is stored. The secret carries 256 random
-- bits, so a fast hash is enough: there is nothing to brute-force.
CREATE TABLE api_keys (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    hash                  bytea NOT NULL UNIQUE,
    scopes                text[] NOT NULL,
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz,
    revoked_at            timestamptz,
    last_used_at          timestamptz,
    rate_limit_per_second double precision
);

-- Rate limits shared by every replica: one row per limited key holding its GCRA
-- theoretical arrival time. Unlogged: after a crash the limits simply restart.
CREATE UNLOGGED TABLE rate_limits (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
);
