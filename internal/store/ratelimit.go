package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TakeRate runs one step of the generic cell rate algorithm (GCRA) on the shared
// row of key, atomically, with the database's clock (one clock for every replica).
// interval is 1/rate, tolerance the burst allowance ((burst-1) × interval), maxWait
// how long the caller accepts to wait. It returns whether the call is granted and,
// if granted, how long to wait before making it, else how long until it would be.
func (db *DB) TakeRate(ctx context.Context, key string, interval, tolerance, maxWait time.Duration) (bool, time.Duration, error) {
	var tat, now time.Time
	err := db.pool.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, tat) VALUES ($1, clock_timestamp() + make_interval(secs => $2))
		ON CONFLICT (key) DO UPDATE
			SET tat = greatest(r.tat, clock_timestamp()) + make_interval(secs => $2)
			WHERE greatest(r.tat, clock_timestamp()) - clock_timestamp() <= make_interval(secs => $3)
		RETURNING tat, clock_timestamp()`,
		key, interval.Seconds(), (tolerance+maxWait).Seconds()).Scan(&tat, &now)
	if err == nil {
		// tat is the new arrival time; this call's own slot began one interval earlier.
		return true, max(0, tat.Sub(now)-interval-tolerance), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	err = db.pool.QueryRow(ctx, `SELECT tat, clock_timestamp() FROM rate_limits WHERE key = $1`, key).Scan(&tat, &now)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return false, max(time.Millisecond, tat.Sub(now)-tolerance), nil
}
