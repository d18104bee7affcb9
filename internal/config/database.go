package config

import (
	"fmt"
	"time"
)

// Database tunes the PostgreSQL pool beyond DATABASE_URL; zero keeps the URL's own
// setting (pool_max_conns, pool_min_conns) or the default.
type Database struct {
	MaxConns         int      `yaml:"max_conns"`         // DATABASE_MAX_CONNS
	MinConns         int      `yaml:"min_conns"`         // DATABASE_MIN_CONNS
	StatementTimeout Duration `yaml:"statement_timeout"` // DATABASE_STATEMENT_TIMEOUT
}

func (c Config) validateDatabase() error {
	d := c.Database
	if d.MaxConns < 0 || d.MaxConns > 10_000 {
		return &Error{Key: "database.max_conns", Env: "DATABASE_MAX_CONNS", Reason: fmt.Sprintf("want 0 (the default) to 10000, got %d", d.MaxConns)}
	}
	if d.MinConns < 0 || (d.MaxConns > 0 && d.MinConns > d.MaxConns) {
		return &Error{Key: "database.min_conns", Env: "DATABASE_MIN_CONNS", Reason: fmt.Sprintf("want 0 to database.max_conns, got %d", d.MinConns)}
	}
	if d.StatementTimeout < 0 {
		return &Error{Key: "database.statement_timeout", Env: "DATABASE_STATEMENT_TIMEOUT", Reason: "must not be negative (0s: no timeout)"}
	}
	if d.StatementTimeout > 0 && d.StatementTimeout.D() < time.Millisecond {
		return &Error{Key: "database.statement_timeout", Env: "DATABASE_STATEMENT_TIMEOUT", Reason: "want at least 1ms, or 0s for none"}
	}
	return nil
}
