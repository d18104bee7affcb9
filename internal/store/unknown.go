package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// UnknownOn returns, for the identifier key=value (case-insensitive), the instances
// that did not know it when asked live less than their time-to-live ago, with when
// each answered.
func (db *DB) UnknownOn(ctx context.Context, key, value string) (map[string]time.Time, error) {
	rows, _ := db.pool.Query(ctx, `
		SELECT instance, checked_at FROM unknown_identifiers
		WHERE key = $1 AND value_key = lower($2) AND expires_at > now()`, key, value)
	type entry struct {
		Instance  string    `db:"instance"`
		CheckedAt time.Time `db:"checked_at"`
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[entry])
	if err != nil {
		return nil, fmt.Errorf("unknown identifiers: %w", err)
	}
	out := make(map[string]time.Time, len(found))
	for _, e := range found {
		out[e.Instance] = e.CheckedAt
	}
	return out, nil
}

// RememberUnknown records that instances did not know key=value at checkedAt, for
// ttl; expired rows of other identifiers go at the same time, so the table holds
// only the last ttl's misses.
func (db *DB) RememberUnknown(ctx context.Context, key, value string, instances []string, checkedAt time.Time, ttl time.Duration) error {
	if len(instances) == 0 || ttl <= 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `
		WITH gone AS (
			DELETE FROM unknown_identifiers
			WHERE expires_at <= now() AND NOT (key = $1 AND value_key = lower($2)))
		INSERT INTO unknown_identifiers (key, value_key, instance, checked_at, expires_at)
		SELECT $1, lower($2), i, $4::timestamptz, $4::timestamptz + make_interval(secs => $5)
		FROM unnest($3::text[]) AS i
		ON CONFLICT (key, value_key, instance) DO UPDATE
		SET checked_at = excluded.checked_at, expires_at = excluded.expires_at`,
		key, value, instances, checkedAt, ttl.Seconds())
	if err != nil {
		return fmt.Errorf("remember unknown identifier: %w", err)
	}
	return nil
}
