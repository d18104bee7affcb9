-- The cache tables become partitioned by instance: one partition per instance of
-- each of devices, users and user_devices. Discovery builds an instance's next
-- partitions as plain tables, without indexes while it loads them and with their
-- indexes built in bulk afterwards, then swaps them in for the old ones in one short
-- transaction (DETACH, DROP, ATTACH): loading rows into the indexed tables one at a
-- time was most of a discovery's time (internal/store/discovery.go says how).
--
-- The cache tables lose their foreign keys to instances: a partition could not be
-- attached without checking every row against it, and discovery creates the row of
-- instances in the transaction that attaches the partition anyway. Instances are
-- never deleted; MarkInstanceDown empties an instance's partitions.
--
-- Partitions are named <table>_g<generation>, from cache_generation; the instance a
-- partition holds is its partition bound (pg_class.relpartbound), no other record.
--
-- users loses last_activity, which no reader used: the users export is copied
-- straight into the next partition while the activity exports still run, and setting
-- it afterwards would have rewritten every row. A user's activity is user_devices'.

CREATE TEMP TABLE old_devices ON COMMIT DROP AS SELECT * FROM devices;
CREATE TEMP TABLE old_users ON COMMIT DROP AS
    SELECT instance, name, upn, sid, email, full_name, refreshed_at FROM users;
CREATE TEMP TABLE old_user_devices ON COMMIT DROP AS SELECT * FROM user_devices;
DROP TABLE user_devices, users, devices;

CREATE SEQUENCE cache_generation;

CREATE TABLE devices (
    collector_uid         text NOT NULL,
    instance              text NOT NULL,
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
) PARTITION BY LIST (instance);
CREATE INDEX devices_lower_name ON devices (lower(name));

CREATE TABLE users (
    name_key      text GENERATED ALWAYS AS (lower(name)) STORED,
    instance      text NOT NULL,
    name          text NOT NULL,
    upn           text,
    sid           text,
    email         text,
    full_name     text,
    refreshed_at  timestamptz NOT NULL,
    PRIMARY KEY (name_key, instance)
) PARTITION BY LIST (instance);
CREATE INDEX users_lower_upn ON users (lower(upn));
CREATE INDEX users_lower_email ON users (lower(email));
CREATE INDEX users_sid ON users (sid);

CREATE TABLE user_devices (
    instance      text NOT NULL,
    user_key      text NOT NULL, -- users.name_key
    collector_uid text NOT NULL,
    last_activity timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('session', 'last_logon')),
    PRIMARY KEY (instance, user_key, collector_uid)
) PARTITION BY LIST (instance);
CREATE INDEX user_devices_device ON user_devices (collector_uid, instance);

-- The rows cached so far move into a partition per instance.
DO $$
DECLARE
    inst text;
    g    bigint;
BEGIN
    FOR inst IN SELECT instance FROM old_devices UNION SELECT instance FROM old_users
                UNION SELECT instance FROM old_user_devices LOOP
        g := nextval('cache_generation');
        EXECUTE format('CREATE TABLE %I PARTITION OF devices FOR VALUES IN (%L)', 'devices_g' || g, inst);
        EXECUTE format('CREATE TABLE %I PARTITION OF users FOR VALUES IN (%L)', 'users_g' || g, inst);
        EXECUTE format('CREATE TABLE %I PARTITION OF user_devices FOR VALUES IN (%L)', 'user_devices_g' || g, inst);
        INSERT INTO devices SELECT * FROM old_devices WHERE instance = inst;
        INSERT INTO users (instance, name, upn, sid, email, full_name, refreshed_at)
            SELECT * FROM old_users WHERE instance = inst;
        INSERT INTO user_devices SELECT * FROM old_user_devices WHERE instance = inst;
    END LOOP;
END $$;
