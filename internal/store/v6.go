package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// V6Route is the Engine that last answered for a device of a V6 instance.
type V6Route struct {
	Key       string // "uid:<collector uid>" or "name:<device name>", lower case
	Engine    string
	LearnedAt time.Time
}

// V6Routes reads the routes of keys of instance; a key without one is absent.
func (db *DB) V6Routes(ctx context.Context, instance string, keys []string) (map[string]V6Route, error) {
	rows, _ := db.pool.Query(ctx, `SELECT device_key, engine, learned_at FROM v6_routes
		WHERE instance = $1 AND device_key = ANY($2)`, instance, keys)
	out := map[string]V6Route{}
	var r V6Route
	_, err := pgx.ForEachRow(rows, []any{&r.Key, &r.Engine, &r.LearnedAt}, func() error {
		out[r.Key] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("v6 routes of %s: %w", instance, err)
	}
	return out, nil
}

// SaveV6Routes records routes of instance in one statement; a route never
// replaces one learned later (another process may have seen the device move
// since).
func (db *DB) SaveV6Routes(ctx context.Context, instance string, routes []V6Route) error {
	if len(routes) == 0 {
		return nil
	}
	keys := make([]string, len(routes))
	engines := make([]string, len(routes))
	at := make([]time.Time, len(routes))
	for k, r := range routes {
		keys[k], engines[k], at[k] = r.Key, r.Engine, r.LearnedAt
	}
	// DISTINCT ON: a batch may name a key twice (ON CONFLICT refuses to touch a row twice).
	_, err := db.pool.Exec(ctx, `INSERT INTO v6_routes (instance, device_key, engine, learned_at)
		SELECT DISTINCT ON (k) $1, k, e, a FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS t(k, e, a)
		ORDER BY k, a DESC
		ON CONFLICT (instance, device_key) DO UPDATE SET engine = excluded.engine, learned_at = excluded.learned_at
		WHERE v6_routes.learned_at <= excluded.learned_at`, instance, keys, engines, at)
	if err != nil {
		return fmt.Errorf("save v6 routes of %s: %w", instance, err)
	}
	return nil
}

// V6Engine is an Engine's health as a process last observed it.
type V6Engine struct {
	Instance            string     `db:"instance"`
	Engine              string     `db:"engine"`
	Down                bool       `db:"down"`
	DownSince           *time.Time `db:"down_since"`
	ConsecutiveFailures int        `db:"consecutive_failures"`
	LastSuccessAt       *time.Time `db:"last_success_at"`
	LastError           string     `db:"last_error"`
	ObservedAt          time.Time  `db:"observed_at"`
}

// Reached reports whether a call has reached the Engine (answered or failed), or
// it is down; false for an Engine only listed (ListV6Engines) so far.
func (e V6Engine) Reached() bool {
	return e.Down || e.ConsecutiveFailures > 0 || e.LastSuccessAt != nil
}

// v6EngineListed is the SQL form of !Reached, over v6_engines.
const v6EngineListed = `(NOT v6_engines.down AND v6_engines.consecutive_failures = 0 AND v6_engines.last_success_at IS NULL)`

// SaveV6Engine records an observation of an Engine's health unless a later one
// is recorded; a last success is never moved back. An observation always
// replaces an Engine only listed, whatever the listing's time.
func (db *DB) SaveV6Engine(ctx context.Context, e V6Engine) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO v6_engines (instance, engine, down, down_since, consecutive_failures,
			last_success_at, last_error, observed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (instance, engine) DO UPDATE SET down = excluded.down,
			down_since = CASE WHEN excluded.down THEN coalesce(v6_engines.down_since, excluded.down_since) END,
			consecutive_failures = excluded.consecutive_failures,
			last_success_at = greatest(v6_engines.last_success_at, excluded.last_success_at),
			last_error = excluded.last_error, observed_at = excluded.observed_at
		WHERE v6_engines.observed_at <= excluded.observed_at OR `+v6EngineListed,
		e.Instance, e.Engine, e.Down, e.DownSince, e.ConsecutiveFailures, e.LastSuccessAt, e.LastError, e.ObservedAt)
	if err != nil {
		return fmt.Errorf("save v6 engine %s/%s: %w", e.Instance, e.Engine, err)
	}
	return nil
}

// ListV6Engines records the Engines of instance a process listed (configured, or
// the Portal's list) at at, so that the status shows them before any call reaches
// them. An Engine only listed so far is listed again at at (the pruner keeps what
// is still listed); one a call reached is left as it is.
func (db *DB) ListV6Engines(ctx context.Context, instance string, engines []string, at time.Time) error {
	if len(engines) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO v6_engines (instance, engine, down, consecutive_failures, observed_at)
		SELECT $1, e, false, 0, $3 FROM unnest($2::text[]) AS t(e)
		ON CONFLICT (instance, engine) DO UPDATE SET observed_at = excluded.observed_at
		WHERE `+v6EngineListed+` AND v6_engines.observed_at < excluded.observed_at`, instance, engines, at)
	if err != nil {
		return fmt.Errorf("list v6 engines of %s: %w", instance, err)
	}
	return nil
}

// V6Engines lists every Engine's last observed health, by instance and name.
func (db *DB) V6Engines(ctx context.Context) ([]V6Engine, error) {
	rows, _ := db.pool.Query(ctx, `SELECT instance, engine, down, down_since, consecutive_failures, last_success_at,
		last_error, observed_at FROM v6_engines ORDER BY instance, engine`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[V6Engine])
	if err != nil {
		return nil, fmt.Errorf("v6 engines: %w", err)
	}
	return out, nil
}
