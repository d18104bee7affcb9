package store

import (
	"context"
	"fmt"
	"time"
)

// RateLease is a slice of a shared rate limit's budget: Granted cells, the first
// conforming at First and each next one Interval later, in the database's clock, read
// at Now.
type RateLease struct {
	Granted    int
	First, Now time.Time
}

// LeaseRate takes up to want cells of the shared limit of key in one statement: the
// cells of its GCRA budget (interval = 1/rate, tolerance = (burst-1) × interval) that
// conform by the database's now + horizon. A lease of 0 cells says in First when the
// next cell will conform.
func (db *DB) LeaseRate(ctx context.Context, key string, interval, tolerance, horizon time.Duration, want int) (RateLease, error) {
	var l RateLease
	err := db.pool.QueryRow(ctx, `SELECT granted, first_at, db_now FROM rate_lease($1, $2, $3, $4, $5)`,
		key, interval.Seconds(), tolerance.Seconds(), horizon.Seconds(), want).Scan(&l.Granted, &l.First, &l.Now)
	if err != nil {
		return RateLease{}, fmt.Errorf("rate limit %s: lease: %w", key, err)
	}
	return l, nil
}
