package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// lease is the exclusive right to one job across every replica: a session-level
// advisory lock held on a connection of its own, outside the pool. The job reads and
// writes through that connection, so a holder that lost its connection, and with it
// the lock, cannot write any more; the lock goes with the session, so another replica
// takes it as soon as the holder dies. DiscoveryLease, PollerLease and PrunerLease
// are leases.
type lease struct {
	conn *pgx.Conn
	kind string // discovery, poller, pruner
	name string // what the lease is for within its kind: an instance, or ""
}

// leaseLockKey names the advisory lock of a lease, per schema (tests share a server,
// one schema each).
const leaseLockKey = `hashtextextended('dexbridge.' || $1 || '.' || current_schema() || '.' || $2, 0)`

// tryLease takes the lease kind/name without waiting, on a new connection with the
// pool's settings plus params. ok is false when another connection holds it.
func (db *DB) tryLease(ctx context.Context, kind, name string, params map[string]string) (*lease, bool, error) {
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = strings.TrimSpace("dexbridge " + kind + " " + name)
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, false, fmt.Errorf("%s lease %s: %w", kind, name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+leaseLockKey+`)`, kind, name).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("%s lease %s: %w", kind, name, err)
		}
		return nil, false, nil
	}
	return &lease{conn: conn, kind: kind, name: name}, true, nil
}

// Alive checks that the lease's connection, and so the lock, is still there.
func (l *lease) Alive(ctx context.Context) error {
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%s lease %s lost: %w", l.kind, l.name, err)
	}
	return nil
}

// Release unlocks and closes the connection; were the unlock to fail, ending the
// session releases the lock anyway.
func (l *lease) Release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+leaseLockKey+`)`, l.kind, l.name)
	_ = l.conn.Close(ctx)
}
