package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// What became of a webhook.
const (
	WebhookOpened         = "opened"           // it opened an event, sent to the employee
	WebhookClosed         = "closed"           // its recovery closed the open events
	WebhookNothingToClose = "nothing_to_close" // a recovery with no open event
	WebhookSuppressed     = "suppressed"       // the employee was told of this monitor within the window
	WebhookHealthyNotSent = "healthy_not_sent" // the diagnosis found nothing wrong
	WebhookUnresolved     = "unresolved"       // nobody to tell: the device or user is unknown
	WebhookIgnored        = "ignored"          // no rule for its monitor
	WebhookInvalid        = "invalid"          // its payload cannot be mapped: retrying would not help
	WebhookFailed         = "failed"           // it failed every delivery; a new delivery by the sender is processed again
)

// WebhookOutcomes lists every outcome.
func WebhookOutcomes() []string {
	return []string{WebhookOpened, WebhookClosed, WebhookNothingToClose, WebhookSuppressed, WebhookHealthyNotSent,
		WebhookUnresolved, WebhookIgnored, WebhookInvalid, WebhookFailed}
}

// WebhookRecord is the durable dedupe record of a webhook the worker dealt with.
type WebhookRecord struct {
	DedupeKey   string
	WebhookID   string
	Source      string
	DeliveryID  string
	ReceivedAt  time.Time
	Outcome     string
	Monitor     string
	AlertStatus string
	Detail      string
	Deliveries  int
	// Payload is kept for invalid and failed webhooks, for the operator.
	Payload []byte
}

// WebhookDone reports whether the webhook with this dedupe key has been dealt with.
// A failed or invalid one does not count: the sender's next delivery gets another
// chance (the database or the rules may have changed).
func (db *DB) WebhookDone(ctx context.Context, dedupeKey string) (bool, error) {
	var done bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE dedupe_key = $1 AND outcome NOT IN ('failed', 'invalid'))`,
		dedupeKey).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("webhook done: %w", err)
	}
	return done, nil
}

// RecordWebhook records a webhook that has no effect (ignored, invalid or failed).
// duplicate is true when the webhook had already been dealt with.
func (db *DB) RecordWebhook(ctx context.Context, rec WebhookRecord) (duplicate bool, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		claimed, err := claimWebhook(ctx, tx, rec)
		duplicate = !claimed
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record webhook: %w", err)
	}
	return duplicate, nil
}

// claimWebhook inserts the dedupe record; false when the webhook was already dealt
// with (a failed or invalid record is replaced, and moves to the head of the
// listing). A concurrent claim of the same key waits for this transaction, then sees
// the row: the unique key is the lock.
func claimWebhook(ctx context.Context, tx pgx.Tx, rec WebhookRecord) (bool, error) {
	var payload any
	if len(rec.Payload) > 0 && (rec.Outcome == WebhookInvalid || rec.Outcome == WebhookFailed) {
		payload = string(jsonb(rec.Payload))
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO webhook_deliveries AS w (dedupe_key, webhook_id, source, delivery_id, received_at, outcome,
			monitor, alert_status, detail, deliveries, payload)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, nullif($7, ''), nullif($8, ''), nullif($9, ''), $10, $11::jsonb)
		ON CONFLICT (dedupe_key) DO UPDATE SET webhook_id = excluded.webhook_id, delivery_id = excluded.delivery_id,
			received_at = excluded.received_at, outcome = excluded.outcome, monitor = excluded.monitor,
			alert_status = excluded.alert_status, detail = excluded.detail, deliveries = excluded.deliveries,
			payload = excluded.payload, processed_at = now(), seq = nextval(pg_get_serial_sequence('webhook_deliveries', 'seq'))
		WHERE w.outcome IN ('failed', 'invalid')
		RETURNING true`,
		rec.DedupeKey, rec.WebhookID, rec.Source, rec.DeliveryID, rec.ReceivedAt, rec.Outcome,
		rec.Monitor, rec.AlertStatus, rec.Detail, max(rec.Deliveries, 1), payload)
	_, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[bool])
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim webhook: %w", err)
	}
	return true, nil
}

// jsonb makes b storable as jsonb: anything but JSON becomes a JSON string, and the
// \u0000 escape, which jsonb refuses, becomes U+FFFD.
func jsonb(b []byte) []byte {
	if b == nil {
		return nil
	}
	if !json.Valid(b) {
		b, _ = json.Marshal(string(b))
	}
	return bytes.ReplaceAll(b, []byte(`\u0000`), []byte(`\ufffd`))
}

// WebhookDelivery is a webhook's dedupe record as stored, with the events it
// recorded or closed.
type WebhookDelivery struct {
	Seq         int64     `db:"seq"`
	DedupeKey   string    `db:"dedupe_key"`
	WebhookID   string    `db:"webhook_id"`
	Source      string    `db:"source"`
	DeliveryID  string    `db:"delivery_id"`
	ReceivedAt  time.Time `db:"received_at"`
	ProcessedAt time.Time `db:"processed_at"`
	Outcome     string    `db:"outcome"`
	Monitor     string    `db:"monitor"`
	AlertStatus string    `db:"alert_status"`
	Detail      string    `db:"detail"`
	Deliveries  int       `db:"deliveries"`
	// Payload is kept for invalid and failed webhooks only.
	Payload []byte             `db:"payload"`
	Events  []WebhookEventNote `db:"-"`
}

// WebhookEventNote is an event a webhook recorded or closed, as its listing shows it.
type WebhookEventNote struct {
	DedupeKey  string `db:"dedupe_key"`
	ClosedBy   string `db:"closed_by"`
	ID         string `db:"id"`
	Status     string `db:"status"`
	UserName   string `db:"user_name"`
	DeviceName string `db:"device_name"`
	Assessment string `db:"assessment"`
	Detail     string `db:"detail"`
}

// WebhookQuery selects webhook records, newest first.
type WebhookQuery struct {
	Source  string     // "" for every source
	Outcome string     // "" for every outcome
	Since   *time.Time // processed at or after
	Before  int64      // only records before this position (a page's last Seq); 0 from the newest
	Limit   int        // at most this many; 0 for no bound
}

// ListWebhookDeliveries lists the records q selects, newest first, each with its
// events.
func (db *DB) ListWebhookDeliveries(ctx context.Context, q WebhookQuery) ([]WebhookDelivery, error) {
	limit := any(nil)
	if q.Limit > 0 {
		limit = q.Limit
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT seq, dedupe_key, webhook_id, source, coalesce(delivery_id, '') AS delivery_id, received_at, processed_at,
			outcome, coalesce(monitor, '') AS monitor, coalesce(alert_status, '') AS alert_status,
			coalesce(detail, '') AS detail, deliveries, payload
		FROM webhook_deliveries
		WHERE ($1 = '' OR source = $1) AND ($2 = '' OR outcome = $2) AND ($3::timestamptz IS NULL OR processed_at >= $3)
		  AND ($4 = 0 OR seq < $4)
		ORDER BY seq DESC LIMIT $5`, q.Source, q.Outcome, q.Since, q.Before, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[WebhookDelivery])
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	keys := make([]string, len(out))
	for i, d := range out {
		keys[i] = d.DedupeKey
	}
	rows, _ = db.pool.Query(ctx, `
		SELECT dedupe_key, coalesce(closed_by, '') AS closed_by, id, status, coalesce(user_name, '') AS user_name,
			coalesce(device_name, '') AS device_name, coalesce(assessment, '') AS assessment, coalesce(detail, '') AS detail
		FROM proactive_events WHERE dedupe_key = ANY($1) OR closed_by = ANY($1) ORDER BY created_at, id`, keys)
	notes, err := pgx.CollectRows(rows, pgx.RowToStructByName[WebhookEventNote])
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: events: %w", err)
	}
	at := make(map[string]int, len(out))
	for i, d := range out {
		at[d.DedupeKey] = i
	}
	for _, n := range notes {
		for _, key := range []string{n.DedupeKey, n.ClosedBy} {
			if i, ok := at[key]; ok && key != "" {
				out[i].Events = append(out[i].Events, n)
			}
		}
	}
	return out, nil
}

// WebhookDeliveries lists the records of a source (every source when source is
// empty), oldest first.
func (db *DB) WebhookDeliveries(ctx context.Context, source string) ([]WebhookDelivery, error) {
	out, err := db.ListWebhookDeliveries(ctx, WebhookQuery{Source: source})
	slices.Reverse(out)
	return out, err
}
