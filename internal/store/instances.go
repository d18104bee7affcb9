package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstanceHealth is what discovery last concluded about an instance.
type InstanceHealth struct {
	Name      string     `db:"name"`
	Up        bool       `db:"up"`
	DownSince *time.Time `db:"down_since"`
	UpdatedAt time.Time  `db:"updated_at"`
}

// InstancesHealth lists every instance discovery has seen.
func (db *DB) InstancesHealth(ctx context.Context) ([]InstanceHealth, error) {
	rows, _ := db.pool.Query(ctx, `SELECT name, up, down_since, updated_at FROM instances ORDER BY name`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[InstanceHealth])
	if err != nil {
		return nil, fmt.Errorf("instances health: %w", err)
	}
	return out, nil
}

// upsertInstanceUp records that instance answered.
func upsertInstanceUp(ctx context.Context, tx pgx.Tx, instance string) error {
	_, err := tx.Exec(ctx, `INSERT INTO instances (name, up) VALUES ($1, true)
		ON CONFLICT (name) DO UPDATE SET up = true, down_since = NULL, updated_at = now()`, instance)
	if err != nil {
		return fmt.Errorf("mark instance %s up: %w", instance, err)
	}
	return nil
}

// MarkInstanceDown records that instance is down and removes its cached devices,
// users and activity, in one transaction. The data returns with the next good
// discovery. down_since keeps the time of the first failure.
func (db *DB) MarkInstanceDown(ctx context.Context, instance string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO instances (name, up, down_since) VALUES ($1, false, now())
			ON CONFLICT (name) DO UPDATE SET up = false, down_since = coalesce(instances.down_since, now()), updated_at = now()`,
			instance); err != nil {
			return err
		}
		for _, table := range []string{"user_devices", "users", "devices"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE instance = $1`, instance); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark instance %s down: %w", instance, err)
	}
	return nil
}
