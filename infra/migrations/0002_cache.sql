-- The cache that discovery fills and identification reads: per Nexthink instance, the
-- devices seen in the last USER_ACTIVITY_PERIOD, their users and the latest activity of
-- each user on each device. Discovery replaces an instance's rows in one transaction,
-- so a reader sees either the previous load or the new one, never a mix.

-- Devices, keyed by collector UID (what remote actions target) and instance. `fields`
-- holds the cached fields, keyed by fully qualified NQL names ("device.name").
CREATE TABLE devices (
    collector_uid         text NOT NULL,
    instance              text NOT NULL REFERENCES instances (name) ON DELETE CASCADE,
    uid                   text,
    name                  text NOT NULL,
    platform              text,
    os_name               text,
    os_version            text,
    hardware_type         text,
    hardware_manufacturer text,
    hardware_model        text,
    last_seen             timestamptz,
    last_logon_user       text,
    last_logon_time       timestamptz,
    fields                jsonb NOT NULL DEFAULT '{}',
    refreshed_at          timestamptz NOT NULL,
    PRIMARY KEY (collector_uid, instance)
);
CREATE INDEX devices_lower_name ON devices (lower(name));

-- Users with activity in the period. name_key (lower(name)) identifies a user within
-- an instance and serves look-ups by user name.
CREATE TABLE users (
    name_key      text GENERATED ALWAYS AS (lower(name)) STORED,
    instance      text NOT NULL REFERENCES instances (name) ON DELETE CASCADE,
    name          text NOT NULL,
    upn           text,
    sid           text,
    email         text,
    full_name     text,
    last_activity timestamptz,
    refreshed_at  timestamptz NOT NULL,
    PRIMARY KEY (name_key, instance)
);
CREATE INDEX users_lower_upn ON users (lower(upn));
CREATE INDEX users_lower_email ON users (lower(email));
CREATE INDEX users_sid ON users (sid);

-- The latest activity of a user on a device: from session activity ('session'), or,
-- for a device without any, from its last logged-on user ('last_logon').
CREATE TABLE user_devices (
    instance      text NOT NULL REFERENCES instances (name) ON DELETE CASCADE,
    user_key      text NOT NULL, -- users.name_key
    collector_uid text NOT NULL,
    last_activity timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('session', 'last_logon')),
    PRIMARY KEY (instance, user_key, collector_uid)
);
CREATE INDEX user_devices_device ON user_devices (collector_uid, instance);

-- One row per discovery run of an instance (up to three attempts each).
CREATE TABLE discovery_runs (
    id          bigserial PRIMARY KEY,
    instance    text NOT NULL,
    trigger     text NOT NULL,          -- schedule, api, cli
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    outcome     text NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'success', 'failure', 'cancelled', 'abandoned')),
    attempts    integer NOT NULL DEFAULT 0,
    devices     integer,
    users       integer,
    activities  integer,
    data_as_of  timestamptz,            -- when the successful attempt's exports began
    error       text
);
CREATE INDEX discovery_runs_instance ON discovery_runs (instance, started_at DESC);
