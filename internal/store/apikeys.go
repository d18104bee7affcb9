package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a key as stored: never its secret.
type APIKey struct {
	ID                 string     `db:"id"`
	Name               string     `db:"name"`
	Scopes             []string   `db:"scopes"`
	CreatedBy          string     `db:"created_by"`
	CreatedAt          time.Time  `db:"created_at"`
	ExpiresAt          *time.Time `db:"expires_at"`
	RevokedAt          *time.Time `db:"revoked_at"`
	LastUsedAt         *time.Time `db:"last_used_at"`
	RateLimitPerSecond *float64   `db:"rate_limit_per_second"`
	// EmployeeUPN binds a delegate key to the one employee it acts for.
	EmployeeUPN *string `db:"employee_upn"`
}

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

const apiKeyColumns = `id, name, scopes, created_by, created_at, expires_at, revoked_at, last_used_at, rate_limit_per_second, employee_upn`

// CreateAPIKey stores k under the hash of its secret.
func (db *DB) CreateAPIKey(ctx context.Context, k APIKey, hash []byte) (APIKey, error) {
	rows, _ := db.pool.Query(ctx, `INSERT INTO api_keys (id, name, hash, scopes, created_by, expires_at, rate_limit_per_second, employee_upn)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+apiKeyColumns,
		k.ID, k.Name, hash, k.Scopes, k.CreatedBy, k.ExpiresAt, k.RateLimitPerSecond, k.EmployeeUPN)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIKey])
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return out, nil
}

// APIKeyByHash finds the key whose secret hashes to hash, revoked or not.
func (db *DB) APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIKey])
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, newest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at DESC, id`)
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByName[APIKey])
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey marks a key revoked; revoking twice keeps the first time.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	rows, _ := db.pool.Query(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 RETURNING `+apiKeyColumns, id)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIKey])
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("revoke api key: %w", err)
	}
	return k, nil
}

// TouchAPIKey records that a key was used.
func (db *DB) TouchAPIKey(ctx context.Context, id string) error {
	_, err := db.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, id)
	return err
}
