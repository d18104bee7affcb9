-- Diagnoses, kept so that a topic remediation runs with the parameters of the latest
-- diagnosis of its topic on the device, and for the record. body is the diagnosis as
-- the API returned it (events.Diagnosis).
CREATE TABLE diagnoses (
    id            text PRIMARY KEY,
    topic         text NOT NULL,
    collector_uid text NOT NULL,
    instance      text NOT NULL,
    device_name   text NOT NULL,
    diagnosed_at  timestamptz NOT NULL,
    source        text NOT NULL,
    body          jsonb NOT NULL
);
CREATE INDEX diagnoses_latest ON diagnoses (topic, collector_uid, instance, diagnosed_at DESC);
