package store

import (
	"context"
	"crypto/rand"
	"fmt"
)

// SigningKey returns the deployment's secret for purpose, making it (32 random
// bytes) the first time any replica asks: every replica signs and checks with it.
func (db *DB) SigningKey(ctx context.Context, purpose string) ([]byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", purpose, err)
	}
	// Two statements: the SELECT sees the row of a replica that won the race.
	if _, err := db.pool.Exec(ctx, `INSERT INTO signing_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		purpose, secret); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", purpose, err)
	}
	var out []byte
	if err := db.pool.QueryRow(ctx, `SELECT secret FROM signing_keys WHERE name = $1`, purpose).Scan(&out); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", purpose, err)
	}
	return out, nil
}
