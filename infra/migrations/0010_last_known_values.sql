-- The last known value of each remote-action output a diagnosis read on a device, with
-- the time of the collection that gave it. Nexthink shows a device's latest execution
-- of a data-collection remote action: while a newer one is pending or waiting for the
-- device, its outputs are empty, so a diagnosis reads the kept value instead (marked as
-- such). A row only moves forward: an older collection never replaces a newer one.
CREATE TABLE last_known_values (
    instance      text NOT NULL,
    collector_uid text NOT NULL,
    field         text NOT NULL,
    value         jsonb NOT NULL,
    collected_at  timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, collector_uid, field)
);
-- The pruner finds the values collected before the diagnoses' retention through it.
CREATE INDEX last_known_values_collected ON last_known_values (collected_at);
