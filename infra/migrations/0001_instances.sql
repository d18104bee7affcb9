-- Nexthink instances dexbridge has seen, with the health discovery reports.
CREATE TABLE instances (
    name        text PRIMARY KEY,
    up          boolean NOT NULL DEFAULT true,
    down_since  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
