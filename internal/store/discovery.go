package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DiscoveryLease is the exclusive right to discover one instance, across every
// replica (a lease). The swap and the instance's next partitions live in a
// transaction on the lease's connection, so a lost connection loses the lock and the
// swap together, and the swap cannot commit without the lock.
type DiscoveryLease struct {
	*lease
	instance string
}

// TryDiscoveryLease takes the lease of instance without waiting. ok is false when
// another connection (another replica, or another run here) holds it.
func (db *DB) TryDiscoveryLease(ctx context.Context, instance string) (*DiscoveryLease, bool, error) {
	// A load of a large instance runs longer than database.statement_timeout allows the
	// pool's short queries: the run's own context bounds it instead.
	l, ok, err := db.tryLease(ctx, "discovery", instance, map[string]string{"statement_timeout": "0"})
	if !ok {
		return nil, ok, err
	}
	return &DiscoveryLease{lease: l, instance: instance}, true, nil
}

// Instance is the instance the lease is for.
func (l *DiscoveryLease) Instance() string { return l.instance }

// StagedDevice is a device as an export delivers it. Empty strings are nulls.
type StagedDevice struct {
	CollectorUID, UID, Name, Platform, OSName, OSVersion string
	HardwareType, HardwareManufacturer, HardwareModel    string
	LastSeen                                             *time.Time
	LastLogonUser                                        string
	LastLogonTime                                        *time.Time
	Fields                                               []byte // JSON object of the cached fields
}

// StagedUser is a user as an export delivers it.
type StagedUser struct {
	Name, UPN, SID, Email, FullName string
}

// StagedActivity is a user's latest activity on a device, as an export delivers it.
type StagedActivity struct {
	CollectorUID, UserName string
	LastActivity           *time.Time
}

// CopyDevices streams devices with COPY straight into the instance's next devices
// partition, which has no index yet: those with a collector UID and a name, seen
// since the cutoff (or never). next returns nil at the end. It returns the rows read.
func (s *SwapTx) CopyDevices(ctx context.Context, next func() (*StagedDevice, error)) (int64, error) {
	cols := []string{"collector_uid", "instance", "uid", "name", "platform", "os_name", "os_version", "hardware_type",
		"hardware_manufacturer", "hardware_model", "last_seen", "last_logon_user", "last_logon_time", "fields", "refreshed_at"}
	row := make([]any, len(cols))
	read := int64(0)
	n, err := s.copy(ctx, s.part["devices"], cols, func() ([]any, error) {
		for {
			d, err := next()
			if d == nil || err != nil {
				return nil, err
			}
			read++
			if d.CollectorUID == "" || d.Name == "" || d.LastSeen != nil && d.LastSeen.Before(s.cutoff) {
				continue
			}
			fields := d.Fields
			if len(fields) == 0 {
				fields = []byte(`{}`)
			}
			// Collector UIDs are UUIDs: Go's lower case is PostgreSQL's.
			row[0], row[1], row[2], row[3] = strings.ToLower(d.CollectorUID), s.l.instance, null(d.UID), d.Name
			row[4], row[5], row[6] = null(d.Platform), null(d.OSName), null(d.OSVersion)
			row[7], row[8], row[9] = null(d.HardwareType), null(d.HardwareManufacturer), null(d.HardwareModel)
			row[10], row[11], row[12] = d.LastSeen, null(d.LastLogonUser), d.LastLogonTime
			row[13], row[14] = fields, s.asOf
			return row, nil
		}
	})
	s.devices += n
	return read, err
}

// CopyUsers streams users with COPY straight into the instance's next users
// partition, which has no index yet: those with a name. next returns nil at the end.
// It returns the rows read. Finish keeps those with activity in the period.
func (s *SwapTx) CopyUsers(ctx context.Context, next func() (*StagedUser, error)) (int64, error) {
	row := make([]any, 7)
	read := int64(0)
	n, err := s.copy(ctx, s.part["users"], []string{"instance", "name", "upn", "sid", "email", "full_name", "refreshed_at"}, func() ([]any, error) {
		for {
			u, err := next()
			if u == nil || err != nil {
				return nil, err
			}
			read++
			if u.Name == "" {
				continue
			}
			// SIDs are ASCII: Go's upper case is PostgreSQL's.
			row[0], row[1], row[2], row[3] = s.l.instance, u.Name, null(u.UPN), null(strings.ToUpper(u.SID))
			row[4], row[5], row[6] = null(u.Email), null(u.FullName), s.asOf
			return row, nil
		}
	})
	s.users += n
	return read, err
}

// CopyActivity streams user-device activity with COPY straight into the instance's
// next activity partition, which has no index yet: that of a user since the cutoff;
// the rest is left out here, where it costs least. Finish removes the activity of
// devices the device exports lacked, and keeps the latest of a user and device
// exported twice. next returns nil at the end. It returns the rows read.
//
// The user's key is the name in lower case, as PostgreSQL's lower() gives it. Go
// lowers an ASCII name the same way (begin checks that the database's locale agrees);
// any other name is copied as it is, and Finish lowers it in PostgreSQL.
func (s *SwapTx) CopyActivity(ctx context.Context, next func() (*StagedActivity, error)) (int64, error) {
	row := make([]any, 5)
	read := int64(0)
	n, err := s.copy(ctx, s.part["user_devices"], []string{"instance", "user_key", "collector_uid", "last_activity", "source"}, func() ([]any, error) {
		for {
			a, err := next()
			if a == nil || err != nil {
				return nil, err
			}
			read++
			if a.UserName == "" || a.LastActivity == nil || a.LastActivity.Before(s.cutoff) {
				continue
			}
			key, ok := a.UserName, false
			if s.lowerIsASCII {
				key, ok = asciiLower(a.UserName)
			}
			if !ok {
				s.unlowered++
			}
			// Collector UIDs are lowered here as the devices' are.
			row[0], row[1], row[2], row[3], row[4] = s.l.instance, key, strings.ToLower(a.CollectorUID), a.LastActivity, "session"
			return row, nil
		}
	})
	s.activities += n
	return read, err
}

// asciiLower is name in lower case, and true, when name is ASCII; otherwise name as
// it is, and false.
func asciiLower(name string) (string, bool) {
	upper := false
	for k := 0; k < len(name); k++ {
		switch c := name[k]; {
		case c >= 0x80:
			return name, false
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	if !upper {
		return name, true
	}
	b := []byte(name)
	for k, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[k] = c + 'a' - 'A'
		}
	}
	return string(b), true
}

func (s *SwapTx) copy(ctx context.Context, table string, cols []string, next func() ([]any, error)) (int64, error) {
	n, err := s.tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(next))
	if err != nil {
		return n, fmt.Errorf("discovery %s: copy into %s: %w", s.l.instance, table, err)
	}
	return n, nil
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SwapCounts are the rows an instance has in the cache after a swap.
type SwapCounts struct {
	Devices, Users, Activities int64
}

// How a swap works. An instance's cached rows are its partitions of devices, users
// and user_devices (migration 0021). A swap builds the instance's next partitions as
// plain tables, in one transaction on the lease's connection: it fills them from
// staging with no index to maintain and no foreign key to check, builds their
// indexes afterwards in bulk (one sort per index, where inserting into indexed tables
// paid a descent of every index per row) and analyses them. Until the end the tables
// are uncommitted: no reader sees them, a failed or abandoned swap leaves nothing
// behind, and the build takes no lock on the cache tables, so readers and other
// instances' swaps go on. Only the flip, the last step, takes the three tables
// exclusively: it drops the instance's old partitions and attaches the new ones (the
// attach finds their indexes built and their CHECK constraint on instance, so it
// neither builds nor scans), a few catalog updates, and commits. A reader's statement
// locks the three tables before it reads, so it sees the old partitions or the new,
// never a mix.
//
// The alternatives measured worse or cost more: rows tagged with a generation in the
// live tables still maintain every index row by row, and make every reader filter on
// the current generation and someone delete the old one; dropping the foreign keys
// alone leaves the index maintenance, most of the cost.

// flipLockTimeout bounds each wait of the flip for one of the cache tables. Readers
// arriving meanwhile queue behind it, so it is the longest they wait; and it is well
// below deadlock_timeout (1 s), so that when a reader holding one table waits for
// another that the flip holds, the flip gives up, not the reader. The flip is then
// retried, flipAttempts times at most (half a minute or more: under load a
// steady stream of readers can hold a table past the timeout many times in a row).
//
// Each attempt locks the tables in another order (the first table rotates). A reader
// locks the tables its statement names one after the other, so one that arrives while
// the flip waits for its first table, and locks that table first too, queues behind
// the flip holding nothing; one that locks another table first may hold it when the
// flip comes to it, and the two wait for each other until the timeout. A steady
// stream of readers in one order (the same query, many times) deadlocked every
// attempt of a fixed order that began with another table; some rotation begins with
// theirs.
const (
	flipLockTimeout  = 200 * time.Millisecond
	flipAttempts     = 150
	lockNotAvailable = "55P03" // SQLSTATE of a lock_timeout
	uniqueViolation  = "23505"
)

// cacheTables are the cache tables, each with the
// statements that index a partition of it (%s is the partition): the parent's indexes
// (migration 0021), which the attach must find, or it would build them itself while
// it holds the tables.
var cacheTables = []struct {
	name    string
	indexes []string
}{
	{"user_devices", []string{`ALTER TABLE %s ADD PRIMARY KEY (instance, user_key, collector_uid)`,
		`CREATE INDEX ON %s (collector_uid, instance)`}},
	{"users", []string{`ALTER TABLE %s ADD PRIMARY KEY (name_key, instance)`,
		`CREATE INDEX ON %s (lower(upn))`, `CREATE INDEX ON %s (lower(email))`, `CREATE INDEX ON %s (sid)`}},
	{"devices", []string{`ALTER TABLE %s ADD PRIMARY KEY (collector_uid, instance)`,
		`CREATE INDEX ON %s (lower(name))`}},
}

func indexesOf(table string) []string {
	for _, t := range cacheTables {
		if t.name == table {
			return t.indexes
		}
	}
	panic("no cache table " + table)
}

// SwapTx is a swap in progress: a transaction on the lease's connection holding the
// instance's next partitions, which the exports are streamed into. Nothing of it is
// visible until Finish commits.
type SwapTx struct {
	l            *DiscoveryLease
	tx           pgx.Tx
	cutoff, asOf time.Time
	// part maps each cache table to the instance's next partition of it.
	part                       map[string]string
	devices, users, activities int64 // rows copied into the next devices, users and activity
	// unlowered counts the activity rows copied with a user key PostgreSQL must lower;
	// lowerIsASCII says that the database lowers ASCII letters as Go does.
	unlowered    int64
	lowerIsASCII bool
	indexed      map[string]bool
	// The time each step of Finish took, for the log.
	steps   []string
	stepEnd time.Time
}

// Steps says how long each step of Finish took.
func (s *SwapTx) Steps() string { return strings.Join(s.steps, ", ") }

// lap records the time since the previous lap as the step name's.
func (s *SwapTx) lap(name string) {
	now := time.Now()
	s.steps = append(s.steps, fmt.Sprintf("%s %.1f s", name, now.Sub(s.stepEnd).Seconds()))
	s.stepEnd = now
}

// BeginSwap opens the swap's transaction and creates the instance's next partitions.
// cutoff is the oldest activity kept, asOf the rows' refresh time. The caller
// streams the exports in (CopyDevices, CopyUsers, CopyActivity), then must Finish or
// Rollback it.
func (l *DiscoveryLease) BeginSwap(ctx context.Context, cutoff, asOf time.Time) (*SwapTx, error) {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("discovery %s: swap: %w", l.instance, err)
	}
	s := &SwapTx{l: l, tx: tx, cutoff: cutoff, asOf: asOf, indexed: map[string]bool{}}
	if err := s.begin(ctx); err != nil {
		s.Rollback(ctx)
		return nil, fmt.Errorf("discovery %s: swap: %w", l.instance, err)
	}
	return s, nil
}

func (s *SwapTx) begin(ctx context.Context) error {
	// Every statement of the swap joins or groups whole tables: hash joins and hash
	// aggregates in memory. A nested loop chosen on a wrong guess about a table with no
	// statistics would be quadratic, a merge join sorts both sides (the last logons'
	// anti-join at 500 000 devices: 1.8 s merged, 0.5 s hashed), and the same guesses,
	// in the billions of rows, would have the JIT compile each statement for seconds.
	// Until Finish one backend builds the indexes (max_parallel_maintenance_workers):
	// the exports, not those builds, decide when the discovery ends, and parallel
	// workers would take every core from the readers (and, where it shares the
	// machine, from the tenant).
	if _, err := s.tx.Exec(ctx, `SET LOCAL work_mem = '128MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off;
		SET LOCAL default_statistics_target = 10; SET LOCAL max_parallel_maintenance_workers = 0`); err != nil {
		return err
	}
	// A locale may lower ASCII letters otherwise (Turkish: I is ı).
	if err := s.tx.QueryRow(ctx, `SELECT lower('ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'abcdefghijklmnopqrstuvwxyz'`).Scan(&s.lowerIsASCII); err != nil {
		return fmt.Errorf("probe lower(): %w", err)
	}
	var gen int64
	if err := s.tx.QueryRow(ctx, `SELECT nextval('cache_generation')`).Scan(&gen); err != nil {
		return fmt.Errorf("next generation: %w", err)
	}
	s.part = map[string]string{}
	for _, t := range cacheTables {
		s.part[t.name] = fmt.Sprintf("%s_g%d", t.name, gen) // needs no quoting
		if err := s.create(ctx, t.name); err != nil {
			return err
		}
	}
	return nil
}

// IndexDevices indexes the next devices once every device export is in, and
// IndexUsers the next users once the users export is: discovery calls them while the
// activity exports still run, so that Finish has less to do. A device or a user (in
// any case) twice in the exports keeps its first row.
func (s *SwapTx) IndexDevices(ctx context.Context) error {
	return s.indexEarly(ctx, "devices", &s.devices, "collector_uid")
}

// IndexUsers: see IndexDevices.
func (s *SwapTx) IndexUsers(ctx context.Context) error {
	return s.indexEarly(ctx, "users", &s.users, "name_key")
}

func (s *SwapTx) indexEarly(ctx context.Context, table string, rows *int64, key string) error {
	if s.indexed[table] {
		return nil
	}
	dups, err := s.primaryKey(ctx, table, "", key)
	if err == nil {
		*rows -= dups
		err = s.index(ctx, table)
	}
	if err != nil {
		return fmt.Errorf("discovery %s: swap: %w", s.l.instance, err)
	}
	s.indexed[table] = true
	return nil
}

// primaryKey adds the primary key of the next partition of a cache table, whose
// first index statement it is. Duplicates are rare, so they are not looked for: only
// when the primary key finds some are they deleted and the key added again. Of the
// rows of a key (whose columns, instance aside, are key) the one kept is the first
// row, or, when latest names a column, the one latest in it (then the first of
// those). It returns the rows deleted.
func (s *SwapTx) primaryKey(ctx context.Context, table, latest string, key ...string) (int64, error) {
	part, pk := s.part[table], fmt.Sprintf(indexesOf(table)[0], s.part[table])
	_, err := s.tx.Exec(ctx, `SAVEPOINT pk; `+pk+`; RELEASE SAVEPOINT pk`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
		return 0, err
	}
	var tag pgconn.CommandTag
	if _, err = s.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT pk`); err == nil {
		same := make([]string, len(key))
		for k, col := range key {
			same[k] = "a." + col + " = b." + col
		}
		worse := `a.ctid > b.ctid` // a is not the row kept
		if latest != "" {
			worse = fmt.Sprintf(`(a.%[1]s < b.%[1]s OR a.%[1]s = b.%[1]s AND a.ctid > b.ctid)`, latest)
		}
		tag, err = s.tx.Exec(ctx, `DELETE FROM `+part+` a USING `+part+` b WHERE `+strings.Join(same, " AND ")+` AND `+worse)
	}
	if err == nil {
		_, err = s.tx.Exec(ctx, pk)
	}
	if err != nil {
		return 0, fmt.Errorf("primary key of the next %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

// create creates the instance's next partition of a cache table: a table with the
// parent's columns (their collations included, which the attach checks), defaults
// and CHECK constraints, read from the catalog (which locks nothing; CREATE TABLE ...
// LIKE would lock the parent until the commit), and a CHECK constraint on instance
// that spares the attach its scan.
func (s *SwapTx) create(ctx context.Context, table string) error {
	var ddl string
	err := s.tx.QueryRow(ctx, `
		SELECT format('CREATE TABLE %s (%s, CHECK (instance = %L)%s)', $2::text,
			(SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
					|| CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
					|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
					|| CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
						WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END,
					', ' ORDER BY a.attnum)
				FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
				LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
				WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped),
			$3::text,
			(SELECT coalesce(string_agg(format(', CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), ''), '')
				FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype = 'c'))`,
		table, s.part[table], s.l.instance).Scan(&ddl)
	if err == nil {
		_, err = s.tx.Exec(ctx, ddl)
	}
	if err != nil {
		return fmt.Errorf("create the next %s: %w", table, err)
	}
	return nil
}

// index builds the secondary indexes of the next partition of a cache table once it
// has its primary key, and analyses it, so that look-ups use its indexes at once. The
// statistics come from a sample of 3 000 rows rather than 30 000: the readers look up
// single keys, and the larger sample took the longer than any index.
func (s *SwapTx) index(ctx context.Context, table string) error {
	for _, stmt := range slices.Concat(indexesOf(table)[1:], []string{`ANALYZE %s`}) {
		if _, err := s.tx.Exec(ctx, fmt.Sprintf(stmt, s.part[table])); err != nil {
			return fmt.Errorf("index the next %s: %w", table, err)
		}
	}
	return nil
}

// Rollback abandons the swap: the previous load stays, and the tables built for the
// next one go with the transaction. Best effort (a broken connection rolls back by
// itself).
func (s *SwapTx) Rollback(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.tx.Rollback(rctx)
}

// Finish builds the instance's next activity and users, flips the instance's
// partitions to the new ones and commits. It keeps the latest activity per user and
// device since the cutoff, the last logged-on user (if since the cutoff) of a device
// without activity, and the users with activity left; everything older is pruned. On
// an error the swap is rolled back.
func (s *SwapTx) Finish(ctx context.Context) (SwapCounts, error) {
	c, err := s.finish(ctx)
	if err != nil {
		s.Rollback(ctx)
		return SwapCounts{}, fmt.Errorf("discovery %s: swap: %w", s.l.instance, err)
	}
	return c, nil
}

func (s *SwapTx) finish(ctx context.Context) (SwapCounts, error) {
	s.stepEnd = time.Now()
	// Nothing else runs now: the indexes left are built with parallel workers.
	if _, err := s.tx.Exec(ctx, `SET LOCAL max_parallel_maintenance_workers TO DEFAULT`); err != nil {
		return SwapCounts{}, err
	}
	if err := s.IndexDevices(ctx); err != nil {
		return SwapCounts{}, err
	}
	if err := s.IndexUsers(ctx); err != nil {
		return SwapCounts{}, err
	}
	tx, instance, cutoff := s.tx, s.l.instance, s.cutoff
	devices, activity, users := s.part["devices"], s.part["user_devices"], s.part["users"]
	c := SwapCounts{Devices: s.devices}
	// The activity copied with its user's name as it is gets its key, and the activity
	// of devices the device exports lacked (no collector UID or name, or not seen since
	// the cutoff) goes.
	if s.unlowered > 0 {
		if _, err := tx.Exec(ctx, `UPDATE `+activity+` SET user_key = lower(user_key COLLATE "default") WHERE user_key <> lower(user_key COLLATE "default")`); err != nil {
			return c, fmt.Errorf("lower user keys: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM `+activity+` ud WHERE NOT EXISTS (SELECT 1 FROM `+devices+` d WHERE d.collector_uid = ud.collector_uid)`)
	if err != nil {
		return c, fmt.Errorf("activity of unknown devices: %w", err)
	}
	s.activities -= tag.RowsAffected()
	s.lap("activity")
	tag, err = tx.Exec(ctx, `
		INSERT INTO `+activity+` (instance, user_key, collector_uid, last_activity, source)
		SELECT $1, lower(d.last_logon_user), d.collector_uid, d.last_logon_time, 'last_logon'
		FROM `+devices+` d
		WHERE d.last_logon_user <> '' AND d.last_logon_time >= $2
		  AND NOT EXISTS (SELECT 1 FROM `+activity+` ud WHERE ud.collector_uid = d.collector_uid)`,
		instance, cutoff)
	if err != nil {
		return c, fmt.Errorf("load last logons: %w", err)
	}
	s.activities += tag.RowsAffected()
	s.lap("last logons")
	dups, err := s.primaryKey(ctx, "user_devices", "last_activity", "user_key", "collector_uid")
	if err != nil {
		return c, err
	}
	c.Activities = s.activities - dups
	if err := s.index(ctx, "user_devices"); err != nil {
		return c, err
	}
	s.lap("activity indexes")
	// Users without activity in the period are removed: that is the pruning of users.
	// (Their index entries stay until autovacuum passes; readers skip dead rows.) A user
	// with activity the users export lacks is added, with the name its devices' last
	// logon gives.
	tag, err = tx.Exec(ctx, `DELETE FROM `+users+` u WHERE NOT EXISTS (SELECT 1 FROM `+activity+` ud WHERE ud.user_key = u.name_key)`)
	if err != nil {
		return c, fmt.Errorf("prune users: %w", err)
	}
	c.Users = s.users - tag.RowsAffected()
	// The keys without a user come first, so that only their devices' last logons are
	// grouped (grouping every device's took 2.5 s, this 0.7 s, on 490 000 devices and
	// 650 000 activities).
	tag, err = tx.Exec(ctx, `
		WITH missing AS MATERIALIZED (SELECT DISTINCT ud.user_key FROM `+activity+` ud
			WHERE NOT EXISTS (SELECT 1 FROM `+users+` u WHERE u.name_key = ud.user_key))
		INSERT INTO `+users+` (instance, name, refreshed_at)
		SELECT $1, coalesce(l.name, m.user_key), $2
		FROM missing m
		LEFT JOIN (SELECT lower(last_logon_user) AS key, min(last_logon_user) AS name
			FROM `+devices+` WHERE last_logon_user <> '' AND lower(last_logon_user) IN (SELECT user_key FROM missing)
			GROUP BY 1) l ON l.key = m.user_key`,
		instance, s.asOf)
	if err != nil {
		return c, fmt.Errorf("load users without a row: %w", err)
	}
	c.Users += tag.RowsAffected()
	s.lap("users")
	if err := s.flip(ctx); err != nil {
		return c, err
	}
	s.lap("flip")
	err = tx.Commit(ctx)
	s.lap("commit")
	return c, err
}

// flip replaces the instance's partitions with the new ones and marks the instance
// up, retrying when a cache table stayed locked longer than flipLockTimeout.
func (s *SwapTx) flip(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.flipOnce(ctx, attempt)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != lockNotAvailable || attempt == flipAttempts {
			return err
		}
		if err := sleepCtx(ctx, time.Duration(rand.Int64N(int64(flipLockTimeout)))); err != nil {
			return err
		}
	}
}

func (s *SwapTx) flipOnce(ctx context.Context, attempt int) (err error) {
	tx, instance := s.tx, s.l.instance
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SAVEPOINT flip; SET LOCAL lock_timeout = %d`, flipLockTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("flip: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT flip`)
			err = fmt.Errorf("flip: %w", err)
		}
	}()
	names := make([]string, len(cacheTables))
	for k, t := range cacheTables {
		names[(k+attempt)%len(names)] = t.name
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return err
	}
	bound := `FOR VALUES IN (` + quoteLiteral(instance) + `)`
	for _, t := range cacheTables {
		rows, _ := tx.Query(ctx, `SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::text::regclass AND pg_get_expr(c.relpartbound, c.oid) = $2`, t.name, bound)
		old, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, o := range old {
			if _, err := tx.Exec(ctx, `DROP TABLE `+o); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t.name+` ATTACH PARTITION `+s.part[t.name]+` `+bound); err != nil {
			return err
		}
	}
	if err := upsertInstanceUp(ctx, tx, instance); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `RELEASE SAVEPOINT flip`)
	return err
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings is on
// since PostgreSQL 9.1, so only quotes are doubled), for DDL, which takes no
// parameters; partition bounds read back from the catalog are written the same way.
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DiscoveryRun is one run of discovery on an instance.
type DiscoveryRun struct {
	ID         int64      `db:"id"`
	Instance   string     `db:"instance"`
	Trigger    string     `db:"trigger"`
	StartedAt  time.Time  `db:"started_at"`
	EndedAt    *time.Time `db:"ended_at"`
	Outcome    string     `db:"outcome"`
	Attempts   int        `db:"attempts"`
	Devices    *int64     `db:"devices"`
	Users      *int64     `db:"users"`
	Activities *int64     `db:"activities"`
	DataAsOf   *time.Time `db:"data_as_of"`
	Error      *string    `db:"error"`
}

// Outcomes of a discovery run.
const (
	RunRunning   = "running"
	RunSuccess   = "success"
	RunFailure   = "failure"
	RunCancelled = "cancelled"
	RunAbandoned = "abandoned" // its replica went away without finishing it
)

const runColumns = `id, instance, trigger, started_at, ended_at, outcome, attempts, devices, users, activities, data_as_of, error`

// StartDiscoveryRun records a run that begins now. Call it holding the instance's
// lease: runs left 'running' by a replica that went away are marked abandoned first.
func (l *DiscoveryLease) StartDiscoveryRun(ctx context.Context, trigger string) (DiscoveryRun, error) {
	if _, err := l.conn.Exec(ctx, `UPDATE discovery_runs SET outcome = 'abandoned', ended_at = now()
		WHERE instance = $1 AND outcome = 'running'`, l.instance); err != nil {
		return DiscoveryRun{}, fmt.Errorf("discovery %s: close abandoned runs: %w", l.instance, err)
	}
	rows, _ := l.conn.Query(ctx, `INSERT INTO discovery_runs (instance, trigger) VALUES ($1, $2) RETURNING `+runColumns,
		l.instance, trigger)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("discovery %s: record run: %w", l.instance, err)
	}
	return run, nil
}

// RunEnd is how a run ended.
type RunEnd struct {
	Outcome  string
	Attempts int
	Counts   *SwapCounts
	DataAsOf *time.Time
	Error    string
}

// FinishDiscoveryRun records the end of run id.
func (db *DB) FinishDiscoveryRun(ctx context.Context, id int64, end RunEnd) (DiscoveryRun, error) {
	var devices, users, activities *int64
	if c := end.Counts; c != nil {
		devices, users, activities = &c.Devices, &c.Users, &c.Activities
	}
	var errText *string
	if end.Error != "" {
		errText = &end.Error
	}
	rows, _ := db.pool.Query(ctx, `UPDATE discovery_runs SET ended_at = now(), outcome = $2, attempts = $3,
			devices = $4, users = $5, activities = $6, data_as_of = $7, error = $8
		WHERE id = $1 RETURNING `+runColumns, id, end.Outcome, end.Attempts, devices, users, activities, end.DataAsOf, errText)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("finish discovery run %d: %w", id, err)
	}
	return run, nil
}

// LastDiscoveryRun is the latest run of instance, or ErrNotFound.
func (db *DB) LastDiscoveryRun(ctx context.Context, instance string) (DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+runColumns+` FROM discovery_runs WHERE instance = $1
		ORDER BY started_at DESC, id DESC LIMIT 1`, instance)
	run, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DiscoveryRun])
	if errors.Is(err, pgx.ErrNoRows) {
		return DiscoveryRun{}, ErrNotFound
	}
	if err != nil {
		return DiscoveryRun{}, fmt.Errorf("last discovery run of %s: %w", instance, err)
	}
	return run, nil
}

// LatestDiscoveryRuns returns, per instance, its latest run and its latest successful
// run (nil when it has none).
func (db *DB) LatestDiscoveryRuns(ctx context.Context) (map[string]DiscoveryRun, map[string]DiscoveryRun, error) {
	latest, err := db.runsPerInstance(ctx, `SELECT DISTINCT ON (instance) `+runColumns+` FROM discovery_runs
		ORDER BY instance, started_at DESC, id DESC`)
	if err != nil {
		return nil, nil, err
	}
	good, err := db.runsPerInstance(ctx, `SELECT DISTINCT ON (instance) `+runColumns+` FROM discovery_runs
		WHERE outcome = 'success' ORDER BY instance, started_at DESC, id DESC`)
	return latest, good, err
}

func (db *DB) runsPerInstance(ctx context.Context, sql string) (map[string]DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, sql)
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return nil, fmt.Errorf("discovery runs: %w", err)
	}
	out := make(map[string]DiscoveryRun, len(runs))
	for _, r := range runs {
		out[r.Instance] = r
	}
	return out, nil
}

// DiscoveryRuns lists the runs of instance, newest first (at most limit).
func (db *DB) DiscoveryRuns(ctx context.Context, instance string, limit int) ([]DiscoveryRun, error) {
	rows, _ := db.pool.Query(ctx, `SELECT `+runColumns+` FROM discovery_runs WHERE instance = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, instance, limit)
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[DiscoveryRun])
	if err != nil {
		return nil, fmt.Errorf("discovery runs of %s: %w", instance, err)
	}
	return runs, nil
}
