-- What became of each webhook, for operators (GET /api/v1/webhooks/deliveries), and
-- what each proactive event found out.
--
-- A webhook's outcome is now what it did rather than "processed": opened, closed,
-- nothing_to_close (a recovery with nothing open), suppressed, healthy_not_sent (the
-- diagnosis found nothing wrong), unresolved (nobody to tell), ignored, invalid,
-- failed. The rows written before are given theirs from their events.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_outcome_check;
UPDATE webhook_deliveries w SET outcome = CASE
    WHEN w.alert_status = 'closed' AND EXISTS (SELECT 1 FROM proactive_events e WHERE e.closed_by = w.dedupe_key) THEN 'closed'
    WHEN w.alert_status = 'closed' THEN 'nothing_to_close'
    WHEN EXISTS (SELECT 1 FROM proactive_events e WHERE e.dedupe_key = w.dedupe_key AND e.status IN ('open', 'closed')) THEN 'opened'
    WHEN EXISTS (SELECT 1 FROM proactive_events e WHERE e.dedupe_key = w.dedupe_key AND e.status = 'suppressed') THEN 'suppressed'
    ELSE 'unresolved' END
WHERE outcome = 'processed';
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_outcome_check CHECK (outcome IN
    ('opened', 'closed', 'nothing_to_close', 'suppressed', 'healthy_not_sent', 'unresolved', 'ignored', 'invalid', 'failed'));

-- seq orders the listing (newest first) and keys its pages; a row processed again (a
-- failed or invalid webhook sent again) takes a new one.
ALTER TABLE webhook_deliveries ADD COLUMN seq bigserial;
CREATE UNIQUE INDEX webhook_deliveries_seq ON webhook_deliveries (seq);
CREATE INDEX webhook_deliveries_source_seq ON webhook_deliveries (source, seq);
CREATE INDEX webhook_deliveries_outcome_seq ON webhook_deliveries (outcome, seq);

-- An event the diagnosis found nothing wrong for is recorded as healthy and, unless
-- its monitor says otherwise, not sent. assessment is what the event found out
-- (fix_available, problem_confirmed, not_checked, healthy, reported), which chose
-- its message; detail says why it has its status.
ALTER TABLE proactive_events DROP CONSTRAINT proactive_events_status_check;
ALTER TABLE proactive_events ADD CONSTRAINT proactive_events_status_check
    CHECK (status IN ('open', 'closed', 'suppressed', 'unresolved', 'healthy'));
ALTER TABLE proactive_events ADD COLUMN assessment text, ADD COLUMN detail text;
CREATE INDEX proactive_events_closed_by ON proactive_events (closed_by) WHERE closed_by IS NOT NULL;
