package store_test

import (
	"context"
	"testing"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestDevicesOfUsersPlansOnce: the batched look-up runs on a generic plan from its
// first call (PostgreSQL left to choose plans it anew at each call, which costs
// more than the look-up), and the setting that says so does not outlive the
// statement on its connection.
func TestDevicesOfUsersPlansOnce(t *testing.T) {
	pool := testenv.Postgres(t)
	ctx := context.Background()
	db := store.New(pool)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every call below runs on this connection: the pool has no other idle one.
	pid := conn.Conn().PgConn().PID()
	conn.Release()
	const calls = 8
	for i := range calls {
		q := store.UserQuery{Matches: []store.UserMatch{{Key: store.ByUserName, Value: "nobody", MatchedBy: "username"}}, Limit: 1 + i}
		if _, err := db.DevicesOfUsers(ctx, []store.UserQuery{q, q}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err = pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if got := conn.Conn().PgConn().PID(); got != pid {
		t.Skipf("the pool opened another connection (%d, then %d)", pid, got)
	}
	var generic, custom int64
	if err := conn.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE '%unnest($6::int[]%'`).Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if generic != calls || custom != 0 {
		t.Errorf("%d calls: %d generic plans, %d custom plans; want %d and 0", calls, generic, custom, calls)
	}
	var mode string
	if err := conn.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "auto" {
		t.Errorf("plan_cache_mode after the look-ups: %q, want auto", mode)
	}
}
