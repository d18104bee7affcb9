package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// KnownValue is the last known value of one remote-action output on a device, and
// the time of the collection that gave it.
type KnownValue struct {
	Field       string          `db:"field"`
	Value       json.RawMessage `db:"value"`
	CollectedAt time.Time       `db:"collected_at"`
}

// KnownValues returns the last known values of a device's outputs.
func (db *DB) KnownValues(ctx context.Context, instance, collectorUID string) ([]KnownValue, error) {
	rows, _ := db.pool.Query(ctx, `SELECT field, value, collected_at FROM last_known_values
		WHERE instance = $1 AND collector_uid = $2`, instance, collectorUID)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[KnownValue])
	if err != nil {
		return nil, fmt.Errorf("known values: %w", err)
	}
	return out, nil
}

// SaveKnownValues keeps values as the last known ones of a device's outputs, each
// unless a newer collection's value is kept already.
func (db *DB) SaveKnownValues(ctx context.Context, instance, collectorUID string, values []KnownValue) error {
	newest := map[string]int{} // a field given twice counts once, at its newest
	var fields, vals []string
	var times []time.Time
	for _, v := range values {
		if !json.Valid(v.Value) {
			return fmt.Errorf("save known values: %s: not JSON", v.Field)
		}
		if k, dup := newest[v.Field]; dup {
			if v.CollectedAt.After(times[k]) {
				vals[k], times[k] = string(v.Value), v.CollectedAt
			}
			continue
		}
		newest[v.Field] = len(fields)
		fields, vals, times = append(fields, v.Field), append(vals, string(v.Value)), append(times, v.CollectedAt)
	}
	if len(fields) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO last_known_values (instance, collector_uid, field, value, collected_at)
		SELECT $1, $2, f, v::jsonb, t FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS u(f, v, t)
		ON CONFLICT (instance, collector_uid, field) DO UPDATE
		SET value = EXCLUDED.value, collected_at = EXCLUDED.collected_at, recorded_at = now()
		WHERE last_known_values.collected_at < EXCLUDED.collected_at`,
		instance, collectorUID, fields, vals, times)
	if err != nil {
		return fmt.Errorf("save known values: %w", err)
	}
	return nil
}
