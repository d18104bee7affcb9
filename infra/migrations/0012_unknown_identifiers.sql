-- Identifiers an instance was asked about live and did not know: identification
-- remembers them for cache.unknown_identifier_ttl, so a chatbot repeating an unknown
-- user or device does not send the same queries to Nexthink again. Every replica
-- reads and writes the same rows.
CREATE TABLE unknown_identifiers (
    key        text NOT NULL,        -- the identification key (username, upn, device_name, ...)
    value_key  text NOT NULL,        -- lower(value)
    instance   text NOT NULL,        -- the instance that did not know it
    checked_at timestamptz NOT NULL, -- when the instance answered
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, value_key, instance)
);
CREATE INDEX unknown_identifiers_expires ON unknown_identifiers (expires_at);
