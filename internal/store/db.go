package store

import "github.com/jackc/pgx/v5/pgxpool"

// DB runs dexbridge's queries; its methods are grouped by concern, one file each.
type DB struct {
	pool *pgxpool.Pool
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *DB { return &DB{pool: pool} }

// Pool is the underlying pool, for readiness checks.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }
