package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// LeaseHolder returns the server process that holds the dexbridge lease kind/name
// ("poller"/"eu", "pruner"/"") of pool's schema, as PostgreSQL itself reports it in
// pg_locks, or 0 when no session holds it. Tests end that process
// (pg_terminate_backend) to see a lease go with its session. The lock key is the
// one internal/store's leases take: a 64-bit key, which pg_locks splits into two
// 32-bit halves.
func LeaseHolder(t testing.TB, pool *pgxpool.Pool, kind, name string) uint32 {
	t.Helper()
	var pid uint32
	err := pool.QueryRow(context.Background(), `
		WITH k AS (SELECT hashtextextended('dexbridge.' || $1 || '.' || current_schema() || '.' || $2, 0) AS key)
		SELECT COALESCE(max(l.pid), 0) FROM pg_locks l, k
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295`, kind, name).Scan(&pid)
	if err != nil {
		t.Fatalf("holder of the %s lease %s: %v", kind, name, err)
	}
	return pid
}
