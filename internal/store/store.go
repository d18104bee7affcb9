// Package store is dexbridge's PostgreSQL access: the connection pool, the migrator,
// and one file of queries per concern. Other packages never write SQL.
package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolSettings tune the pool beyond what the URL says; a zero field keeps the URL's
// value (pool_max_conns, pool_min_conns, statement_timeout) or pgx's default.
type PoolSettings struct {
	MaxConns int32
	MinConns int32
	// StatementTimeout ends any statement that runs longer, on the server. The
	// leases' connections get it too, except discovery's (its bulk load runs longer,
	// bounded by its own context); migrations run without it.
	StatementTimeout time.Duration
}

// Open connects a pool with the URL's settings and checks the server answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return OpenWith(ctx, url, PoolSettings{})
}

// OpenWith connects a pool with the URL's settings overridden by s, and checks the
// server answers.
func OpenWith(ctx context.Context, url string, s PoolSettings) (*pgxpool.Pool, error) {
	cfg, err := ParseConfig(url, s)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// ParseConfig is the pool configuration Open uses. The URL goes to pgx untouched,
// so its TLS settings (sslmode, sslrootcert, sslcert, sslkey, sslpassword, ...) are
// pgx's own; s only adds to it.
func ParseConfig(url string, s PoolSettings) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, fmt.Errorf("parse database url: invalid connection string")
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	if s.MaxConns > 0 {
		cfg.MaxConns = s.MaxConns
	}
	if s.MinConns > 0 {
		cfg.MinConns = s.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("database pool: min conns %d above max conns %d", cfg.MinConns, cfg.MaxConns)
	}
	if s.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(1, s.StatementTimeout.Milliseconds()), 10)
	}
	markConnErrors(&cfg.ConnConfig.Config)
	return cfg, nil
}
