package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// load is one discovery's worth of staged rows for an instance: devices, each used by
// its own user, all marked by the load's time (the rows' refreshed_at).
type load struct {
	instance string
	asOf     time.Time
	devices  int
	seed     uint64
}

func (ld load) name(k int) string { return fmt.Sprintf("%s-%d-%d", ld.instance, ld.seed, k) }

// stage takes the instance's lease and begins a swap of the load's rows.
func stage(t *testing.T, db *store.DB, ld load) (*store.DiscoveryLease, *store.SwapTx) {
	t.Helper()
	l, ok, err := db.TryDiscoveryLease(context.Background(), ld.instance)
	if err != nil || !ok {
		t.Fatalf("lease of %s: %v, %v", ld.instance, ok, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l, stageOn(t, l, ld)
}

// stageOn begins a swap of the load's rows on l.
func stageOn(t *testing.T, l *store.DiscoveryLease, ld load) *store.SwapTx {
	t.Helper()
	ctx := context.Background()
	s, err := l.BeginSwap(ctx, ld.asOf.Add(-24*time.Hour), ld.asOf)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(ld.seed, 1))
	seen := ld.asOf.Add(-time.Duration(r.IntN(3600)) * time.Second)
	k := 0
	// The first device comes twice: the first row is kept.
	if _, err := s.CopyDevices(ctx, func() (*store.StagedDevice, error) {
		if k == ld.devices+1 {
			return nil, nil
		}
		k++
		name := "PC-" + ld.name(k)
		if k == ld.devices+1 {
			k, name = 1, "DUPLICATE"
			defer func() { k = ld.devices + 1 }()
		}
		return &store.StagedDevice{CollectorUID: "UID-" + ld.name(k), Name: name, Platform: "Windows",
			LastSeen: &seen, Fields: []byte(`{}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	k = 0
	// The first user comes twice, in another case: it is kept once.
	if _, err := s.CopyUsers(ctx, func() (*store.StagedUser, error) {
		if k == ld.devices+1 {
			return nil, nil
		}
		k++
		if k == ld.devices+1 {
			return &store.StagedUser{Name: strings.ToUpper("user-" + ld.name(1))}, nil
		}
		return &store.StagedUser{Name: "user-" + ld.name(k), UPN: "user-" + ld.name(k) + "@example.com"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	k = 0
	// Two more rows of the first device are left out: one without a user, one before
	// the cutoff.
	old := ld.asOf.Add(-25 * time.Hour)
	if _, err := s.CopyActivity(ctx, func() (*store.StagedActivity, error) {
		k++
		switch {
		case k == ld.devices+1:
			return &store.StagedActivity{CollectorUID: "uid-" + ld.name(1), LastActivity: &seen}, nil
		case k == ld.devices+2:
			return &store.StagedActivity{CollectorUID: "uid-" + ld.name(1), UserName: "old-" + ld.name(1), LastActivity: &old}, nil
		case k > ld.devices+2:
			return nil, nil
		}
		return &store.StagedActivity{CollectorUID: "uid-" + ld.name(k), UserName: "user-" + ld.name(k), LastActivity: &seen}, nil
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func swap(t *testing.T, db *store.DB, ld load) {
	t.Helper()
	l, s := stage(t, db, ld)
	c, err := s.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Devices != int64(ld.devices) || c.Users != int64(ld.devices) || c.Activities != int64(ld.devices) {
		t.Fatalf("swap of %s: got %+v, want %d of each", ld.instance, c, ld.devices)
	}
	if devs, err := db.DevicesByKey(context.Background(), store.ByDeviceName, "DUPLICATE", 10); err != nil || len(devs) != 0 {
		t.Fatalf("a device twice in the exports kept its second row: %+v, %v", devs, err)
	}
	l.Release(context.Background())
}

// snapshot is what one statement sees of an instance's cache: the distinct load times
// of its devices and users, and its row counts.
type snapshot struct {
	devicesAsOf, usersAsOf []time.Time
	devices, users, acts   int
}

func look(ctx context.Context, pool *pgxpool.Pool, instance string) (snapshot, error) {
	var s snapshot
	err := pool.QueryRow(ctx, `SELECT
			(SELECT coalesce(array_agg(DISTINCT refreshed_at), '{}') FROM devices WHERE instance = $1),
			(SELECT coalesce(array_agg(DISTINCT refreshed_at), '{}') FROM users WHERE instance = $1),
			(SELECT count(*) FROM devices WHERE instance = $1),
			(SELECT count(*) FROM users WHERE instance = $1),
			(SELECT count(*) FROM user_devices ud JOIN devices d USING (instance, collector_uid)
				JOIN users u ON u.instance = ud.instance AND u.name_key = ud.user_key WHERE ud.instance = $1)`,
		instance).Scan(&s.devicesAsOf, &s.usersAsOf, &s.devices, &s.users, &s.acts)
	return s, err
}

// is reports whether s shows ld whole.
func (s snapshot) is(ld load) bool {
	return len(s.devicesAsOf) == 1 && s.devicesAsOf[0].Equal(ld.asOf) && len(s.usersAsOf) == 1 && s.usersAsOf[0].Equal(ld.asOf) &&
		s.devices == ld.devices && s.users == ld.devices && s.acts == ld.devices
}

func mustSee(t *testing.T, pool *pgxpool.Pool, ld load) {
	t.Helper()
	s, err := look(context.Background(), pool, ld.instance)
	if err != nil {
		t.Fatal(err)
	}
	if !s.is(ld) {
		t.Fatalf("%s: got %+v, want the load of %s whole (%d rows of each)", ld.instance, s, ld.asOf, ld.devices)
	}
}

// builds counts the tables built for a swap and never attached.
func builds(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_class
		WHERE relkind = 'r' AND NOT relispartition AND relname ~ '^(devices|users|user_devices)_g[0-9]+$'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReadersSeeOneLoadWhole: readers running through swaps of an instance see, in
// every statement, either the previous load or the new one whole; the build of the
// next load locks none of the cache tables (another session takes them exclusively
// meanwhile), so it blocks no reader; the other instance's rows stay as they were.
func TestReadersSeeOneLoadWhole(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	us := load{instance: "us", asOf: t0.Add(-time.Hour), devices: 50, seed: rand.Uint64()}
	swap(t, db, us)
	prev := load{instance: "eu", asOf: t0.Add(-time.Hour), devices: 300, seed: rand.Uint64()}
	swap(t, db, prev)

	var reads, bad atomic.Int64
	var firstBad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	loads := []load{prev}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := look(ctx, pool, "eu")
				mu.Lock()
				known := loads
				mu.Unlock()
				ok := err == nil && slices.ContainsFunc(known, s.is)
				if !ok {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%+v, %v", s, err))
				}
				reads.Add(1)
			}
		})
	}
	for k := range 4 {
		next := load{instance: "eu", asOf: t0.Add(time.Duration(k) * time.Minute), devices: 200 + 100*k, seed: rand.Uint64()}
		l, sw := stage(t, db, next)
		if err := sw.IndexDevices(ctx); err != nil {
			t.Fatal(err)
		}
		// Mid-build: the previous load serves, and the swap's session holds no lock on
		// the cache tables, so it can block no reader.
		mustSee(t, pool, prev)
		var held int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = 'dexbridge discovery eu'
			  AND l.relation IN ('devices'::regclass, 'users'::regclass, 'user_devices'::regclass)`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held != 0 {
			t.Errorf("swap %d: the build holds %d locks on the cache tables, want none", k, held)
		}
		mu.Lock()
		loads = append(loads, next)
		mu.Unlock()
		r := reads.Load()
		testenv.Eventually(t, "readers read during the build", func() bool { return reads.Load() > r })
		if _, err := sw.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		l.Release(ctx)
		mustSee(t, pool, next)
		prev = next
	}
	r := reads.Load()
	testenv.Eventually(t, "readers read after the last swap", func() bool { return reads.Load() > r })
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d reads saw neither load whole; first: %v", n, reads.Load(), firstBad.Load())
	}
	mustSee(t, pool, us)
	if n := builds(t, pool); n != 0 {
		t.Errorf("%d built tables left over, want none", n)
	}
}

// TestFailedSwapKeepsTheOldCache: a swap abandoned after its devices were built, and
// one that fails in its last step, leave the previous load serving and no table
// behind.
func TestFailedSwapKeepsTheOldCache(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	old := load{instance: "eu", asOf: t0.Add(-time.Hour), devices: 120, seed: rand.Uint64()}
	swap(t, db, old)

	next := load{instance: "eu", asOf: t0, devices: 80, seed: rand.Uint64()}
	l, sw := stage(t, db, next)
	if err := sw.IndexDevices(ctx); err != nil {
		t.Fatal(err)
	}
	sw.Rollback(ctx)
	mustSee(t, pool, old)

	sw = stageOn(t, l, next)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sw.Finish(cctx); err == nil {
		t.Fatal("Finish with a cancelled context succeeded")
	}
	l.Release(ctx)
	mustSee(t, pool, old)
	if n := builds(t, pool); n != 0 {
		t.Errorf("%d built tables left over, want none", n)
	}
	// The next good swap replaces the old load.
	swap(t, db, next)
	mustSee(t, pool, next)
}

// TestSwapsOfTwoInstancesAtOnce: two instances' swaps interleaved each replace only
// their own instance's rows; a third instance's stay; the lease refuses a second swap
// of the same instance.
func TestSwapsOfTwoInstancesAtOnce(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	ap := load{instance: "ap", asOf: t0.Add(-time.Hour), devices: 40, seed: rand.Uint64()}
	swap(t, db, ap)
	swap(t, db, load{instance: "eu", asOf: t0.Add(-time.Hour), devices: 70, seed: rand.Uint64()})

	eu := load{instance: "eu", asOf: t0, devices: 90, seed: rand.Uint64()}
	us := load{instance: "us", asOf: t0.Add(time.Minute), devices: 60, seed: rand.Uint64()}
	_, se := stage(t, db, eu)
	_, su := stage(t, db, us)
	if _, ok, err := db.TryDiscoveryLease(ctx, "eu"); ok || err != nil {
		t.Fatalf("a second lease of eu: got %v, %v; want refused", ok, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, sw := range []*store.SwapTx{su, se} {
		wg.Go(func() { _, errs[k] = sw.Finish(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustSee(t, pool, eu)
	mustSee(t, pool, us)
	mustSee(t, pool, ap)
}

// TestFlipWaitsForAReader: a reader holding a cache table in a long transaction
// delays the flip, which retries, rather than failing the swap.
func TestFlipWaitsForAReader(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	old := load{instance: "eu", asOf: t0.Add(-time.Hour), devices: 30, seed: rand.Uint64()}
	swap(t, db, old)
	reader, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Rollback(ctx) }()
	var n int
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM users WHERE instance = 'eu'`).Scan(&n); err != nil || n != old.devices {
		t.Fatalf("reader: %d, %v", n, err)
	}
	next := load{instance: "eu", asOf: t0, devices: 50, seed: rand.Uint64()}
	_, sw := stage(t, db, next)
	done := make(chan error, 1)
	go func() { _, err := sw.Finish(ctx); done <- err }()
	testenv.Eventually(t, "the flip waits for the reader's lock", func() bool {
		var waiting bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'
			AND relation = 'users'::regclass)`).Scan(&waiting)
		return err == nil && waiting
	})
	mustSeeIn := func() {
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM users WHERE instance = 'eu'`).Scan(&n); err != nil || n != old.devices {
			t.Fatalf("reader during the flip: %d, %v", n, err)
		}
	}
	mustSeeIn()
	_ = reader.Rollback(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustSee(t, pool, next)
}

// TestCacheMigrationKeepsTheCache: the rows cached before the cache tables were
// partitioned (migration 21) are answered after it, each instance in a partition of
// its own, which the next swap of the instance replaces and no other touches.
func TestCacheMigrationKeepsTheCache(t *testing.T) {
	ctx := context.Background()
	pool, ms := unmigrated(t)
	apply := func(from, to int) {
		t.Helper()
		for _, m := range ms {
			if m.Version >= from && m.Version < to {
				if _, err := pool.Exec(ctx, m.SQL); err != nil {
					t.Fatalf("%s: %v", m.Name, err)
				}
			}
		}
	}
	apply(0, 21)
	now := time.Now().UTC().Truncate(time.Second)
	for _, in := range []string{"eu", "us"} {
		if _, err := pool.Exec(ctx, `INSERT INTO instances (name, up) VALUES ($1, true)`, in); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO devices (collector_uid, instance, name, last_seen, refreshed_at) VALUES ('uid-' || $1, $1, 'PC-' || $1, $2, $2)`,
			`INSERT INTO users (instance, name, upn, refreshed_at) VALUES ($1, 'User-' || $1, 'user@' || $1, $2)`,
			`INSERT INTO user_devices (instance, user_key, collector_uid, last_activity, source) VALUES ($1, 'user-' || $1, 'uid-' || $1, $2, 'session')`,
		} {
			if _, err := pool.Exec(ctx, q, in, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(21, 1<<30)
	db := store.New(pool)
	for _, in := range []string{"eu", "us"} {
		got, err := db.DevicesOfUser(ctx, []store.UserMatch{{Key: store.ByUPN, Value: "USER@" + in, MatchedBy: "upn"}}, "", 10)
		if err != nil || len(got) != 1 || got[0].Name != "PC-"+in || got[0].Instance != in || got[0].User != "User-"+in {
			t.Fatalf("%s after the migration: got %+v, %v", in, got, err)
		}
	}
	ld := load{instance: "eu", asOf: now, devices: 20, seed: rand.Uint64()}
	swap(t, db, ld)
	mustSee(t, pool, ld)
	if got, err := db.DevicesByKey(ctx, store.ByDeviceName, "PC-us", 10); err != nil || len(got) != 1 || got[0].User != "User-us" {
		t.Fatalf("us after a swap of eu: got %+v, %v", got, err)
	}
	if got, err := db.DevicesByKey(ctx, store.ByDeviceName, "PC-eu", 10); err != nil || len(got) != 0 {
		t.Fatalf("eu's migrated device after a swap of eu: got %+v, %v", got, err)
	}
}

// beginSwap takes the lease of instance, released when t ends, and begins a swap
// of rows refreshed at asOf, keeping a day of activity.
func beginSwap(t *testing.T, db *store.DB, instance string, asOf time.Time) *store.SwapTx {
	t.Helper()
	l, ok, err := db.TryDiscoveryLease(context.Background(), instance)
	if err != nil || !ok {
		t.Fatalf("lease of %s: %v, %v", instance, ok, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	s, err := l.BeginSwap(context.Background(), asOf.Add(-24*time.Hour), asOf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// each streams rows, then nil.
func each[T any](rows ...*T) func() (*T, error) {
	return func() (*T, error) {
		if len(rows) == 0 {
			return nil, nil
		}
		r := rows[0]
		rows = rows[1:]
		return r, nil
	}
}

// TestSwapActivityKeys: activity streamed straight into the next activity gets the
// key PostgreSQL's lower() gives the user's name, ASCII or not; the activity of a
// device the device exports lacked is left out; a user and device exported twice,
// in any case, keeps its latest activity; a user with activity that the users export
// lacks is added, named as a device's last logon names them, or by the key.
func TestSwapActivityKeys(t *testing.T) {
	pool := testenv.Postgres(t)
	db := store.New(pool)
	ctx := context.Background()
	asOf := time.Now().UTC().Truncate(time.Second)
	instance := fmt.Sprintf("keys-%d", rand.Uint64())
	s := beginSwap(t, db, instance, asOf)
	at := func(ago time.Duration) *time.Time { t := asOf.Add(-ago); return &t }
	if _, err := s.CopyDevices(ctx, each(
		&store.StagedDevice{CollectorUID: "UID-A", Name: "PC-A", LastSeen: at(0)},
		&store.StagedDevice{CollectorUID: "UID-B", Name: "PC-B", LastSeen: at(0)},
		&store.StagedDevice{CollectorUID: "UID-C", Name: "PC-C", LastSeen: at(0), LastLogonUser: "Mary.Smith", LastLogonTime: at(5 * time.Hour)})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CopyUsers(ctx, each(&store.StagedUser{Name: "Élodie.Martin"}, &store.StagedUser{Name: "jdoe"},
		&store.StagedUser{Name: "ghost"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CopyActivity(ctx, each(
		&store.StagedActivity{CollectorUID: "uid-a", UserName: "ÉLODIE.MARTIN", LastActivity: at(3 * time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-b", UserName: "JDoe", LastActivity: at(2 * time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-b", UserName: "jdoe", LastActivity: at(time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-b", UserName: "JDOE", LastActivity: at(4 * time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-unknown", UserName: "ghost", LastActivity: at(time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-c", UserName: "MARY.SMITH", LastActivity: at(time.Hour)},
		&store.StagedActivity{CollectorUID: "uid-a", UserName: "Nobody", LastActivity: at(time.Hour)})); err != nil {
		t.Fatal(err)
	}
	c, err := s.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Devices != 3 || c.Users != 4 || c.Activities != 4 {
		t.Errorf("counts: got %+v, want 3 devices, 4 users (ghost has activity on no known device) and 4 activities", c)
	}
	rows, _ := pool.Query(ctx, `SELECT ud.user_key || ' ' || ud.collector_uid || ' ' || extract(epoch FROM ud.last_activity)::bigint || ' ' || u.name
		FROM user_devices ud JOIN users u ON u.instance = ud.instance AND u.name_key = ud.user_key
		WHERE ud.instance = $1`, instance)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("jdoe uid-b %d jdoe", at(time.Hour).Unix()),
		fmt.Sprintf("mary.smith uid-c %d Mary.Smith", at(time.Hour).Unix()),
		fmt.Sprintf("nobody uid-a %d nobody", at(time.Hour).Unix()),
		fmt.Sprintf("élodie.martin uid-a %d Élodie.Martin", at(3*time.Hour).Unix()),
	}
	if !slices.Equal(got, want) {
		t.Errorf("activity with its users:\n got %q\nwant %q", got, want)
	}
}

// TestSwapActivityKeysInATurkishDatabase: where the database lowers I to ı, an ASCII
// name's key is PostgreSQL's too, so the activity still finds its user.
func TestSwapActivityKeysInATurkishDatabase(t *testing.T) {
	ctx := context.Background()
	base := testenv.PostgresURL(t)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	name := fmt.Sprintf("dexbridge_tr_%d", rand.Uint32())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR' LOCALE 'C.UTF-8' TEMPLATE template0`); err != nil {
		t.Skipf("this server makes no Turkish ICU database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawQuery = "/"+name, ""
	pool := testenv.Migrated(t, u.String())
	db := store.New(pool)
	asOf := time.Now().UTC().Truncate(time.Second)
	s := beginSwap(t, db, "eu", asOf)
	if _, err := s.CopyDevices(ctx, each(&store.StagedDevice{CollectorUID: "UID-A", Name: "PC-A", LastSeen: &asOf})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CopyUsers(ctx, each(&store.StagedUser{Name: "IVAN"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CopyActivity(ctx, each(&store.StagedActivity{CollectorUID: "uid-a", UserName: "IVAN", LastActivity: &asOf})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	var key string
	if err := pool.QueryRow(ctx, `SELECT ud.user_key FROM user_devices ud JOIN users u ON u.instance = ud.instance AND u.name_key = ud.user_key`).Scan(&key); err != nil || key != "ıvan" {
		t.Errorf("IVAN's activity: key %q (%v), want ıvan, joined to the user", key, err)
	}
}
