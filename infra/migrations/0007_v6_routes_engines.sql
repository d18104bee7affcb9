-- Nexthink V6 (package nexthinkv6), shared by every replica of every worker.
--
-- v6_routes is the seed's cross-engine wrapper: the Engine that last answered for a
-- device, so a question about it goes to that Engine alone. Discovery fills it (its
-- export passes through the driver), a fan-out that finds a device on another
-- Engine updates it; each process reads it through a short in-memory cache.
-- device_key is "uid:<collector uid>" or "name:<device name>", lower case.
CREATE TABLE v6_routes (
    instance   text        NOT NULL,
    device_key text        NOT NULL,
    engine     text        NOT NULL,
    learned_at timestamptz NOT NULL,
    PRIMARY KEY (instance, device_key)
);
CREATE INDEX v6_routes_learned_at ON v6_routes (learned_at);

-- v6_engines is each Engine's health as the last process that called it saw it
-- (GET /api/v1/status): down after three failed calls in a row, up again when it
-- answers. observed_at orders the reports of several processes.
CREATE TABLE v6_engines (
    instance             text        NOT NULL,
    engine               text        NOT NULL,
    down                 boolean     NOT NULL,
    down_since           timestamptz,
    consecutive_failures integer     NOT NULL,
    last_success_at      timestamptz,
    last_error           text        NOT NULL DEFAULT '',
    observed_at          timestamptz NOT NULL,
    PRIMARY KEY (instance, engine)
);
