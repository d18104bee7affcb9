package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// What became of a webhook.
const (
	WebhookProcessed = "processed" // its effects are recorded
	WebhookIgnored   = "ignored"   // no rule for its monitor
	WebhookInvalid   = "invalid"   // its payload cannot be mapped: retrying would not help
	WebhookFailed    = "failed"    // it failed every delivery; a new delivery by the sender is processed again
)

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
// A failed one does not count: the sender's next delivery gets another chance.
func (db *DB) WebhookDone(ctx context.Context, dedupeKey string) (bool, error) {
	var done bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE dedupe_key = $1 AND outcome <> 'failed')`,
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
// with (a failed record is replaced). A concurrent claim of the same key waits for
// this transaction, then sees the row: the unique key is the lock.
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
			payload = excluded.payload, processed_at = now()
		WHERE w.outcome = 'failed'
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

// WebhookDelivery is a webhook's dedupe record as stored.
type WebhookDelivery struct {
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
}

// WebhookDeliveries lists the dedupe records of a source, oldest first (all sources
// when source is empty).
func (db *DB) WebhookDeliveries(ctx context.Context, source string) ([]WebhookDelivery, error) {
	rows, _ := db.pool.Query(ctx, `
		SELECT dedupe_key, webhook_id, source, coalesce(delivery_id, '') AS delivery_id, received_at, processed_at,
			outcome, coalesce(monitor, '') AS monitor, coalesce(alert_status, '') AS alert_status,
			coalesce(detail, '') AS detail, deliveries
		FROM webhook_deliveries WHERE $1 = '' OR source = $1
		ORDER BY processed_at, dedupe_key`, source)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[WebhookDelivery])
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: %w", err)
	}
	return out, nil
}
