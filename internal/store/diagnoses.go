package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Diagnosis is a stored diagnosis; Body is its JSON (events.Diagnosis).
type Diagnosis struct {
	ID           string    `db:"id"`
	Topic        string    `db:"topic"`
	CollectorUID string    `db:"collector_uid"`
	Instance     string    `db:"instance"`
	DeviceName   string    `db:"device_name"`
	DiagnosedAt  time.Time `db:"diagnosed_at"`
	Source       string    `db:"source"`
	Body         []byte    `db:"body"`
}

// SaveDiagnosis records a diagnosis.
func (db *DB) SaveDiagnosis(ctx context.Context, d Diagnosis) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO diagnoses (id, topic, collector_uid, instance, device_name, diagnosed_at, source, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		d.ID, d.Topic, d.CollectorUID, d.Instance, d.DeviceName, d.DiagnosedAt, d.Source, d.Body)
	if err != nil {
		return fmt.Errorf("save diagnosis: %w", err)
	}
	return nil
}

// LatestDiagnosis returns the newest diagnosis of topic on a device made after since,
// or ErrNotFound.
func (db *DB) LatestDiagnosis(ctx context.Context, topic, collectorUID, instance string, since time.Time) (Diagnosis, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id, topic, collector_uid, instance, device_name, diagnosed_at, source, body
		FROM diagnoses WHERE topic = $1 AND collector_uid = $2 AND instance = $3 AND diagnosed_at > $4
		ORDER BY diagnosed_at DESC LIMIT 1`, topic, collectorUID, instance, since)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Diagnosis])
	if errors.Is(err, pgx.ErrNoRows) {
		return Diagnosis{}, ErrNotFound
	}
	if err != nil {
		return Diagnosis{}, fmt.Errorf("latest diagnosis: %w", err)
	}
	return d, nil
}
