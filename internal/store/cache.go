package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CachedDevice is a device of the cache as identification shows it, with the latest
// activity that links it to the identified user (or, looked up by device, to any
// user).
type CachedDevice struct {
	Instance             string     `db:"instance"`
	CollectorUID         string     `db:"collector_uid"`
	UID                  string     `db:"uid"`
	Name                 string     `db:"name"`
	Platform             string     `db:"platform"`
	OSName               string     `db:"os_name"`
	OSVersion            string     `db:"os_version"`
	HardwareType         string     `db:"hardware_type"`
	HardwareManufacturer string     `db:"hardware_manufacturer"`
	HardwareModel        string     `db:"hardware_model"`
	LastSeen             *time.Time `db:"last_seen"`
	LastActivity         *time.Time `db:"last_activity"`
	ActivitySource       string     `db:"activity_source"` // session, last_logon or ""
	// The user whose activity LastActivity is: name, full name, UPN and SID ("" when
	// unknown).
	User         string    `db:"user_name"`
	UserFullName string    `db:"user_full_name"`
	UserUPN      string    `db:"user_upn"`
	UserSID      string    `db:"user_sid"`
	MatchedBy    string    `db:"matched_by"` // for a user look-up, the UserMatch that matched
	RefreshedAt  time.Time `db:"refreshed_at"`
}

// UserKey says which user attribute an identification matches.
type UserKey int

// The user attributes identification looks users up by.
const (
	ByUserName UserKey = iota
	ByUPN
	ByEmail
	BySID
)

// Each condition uses one of the users indexes; $N is the value.
var userConditions = map[UserKey]string{
	ByUserName: `u.name_key = lower($N)`,
	ByUPN:      `lower(u.upn) = lower($N)`,
	ByEmail:    `lower(u.email) = lower($N)`,
	BySID:      `u.sid = upper($N)`,
}

// UserMatch is one way users may match a look-up: an attribute, the value it must
// have, and what the answer says matched (events.UserMatch).
type UserMatch struct {
	Key       UserKey
	Value     string
	MatchedBy string
}

const deviceColumns = `d.instance, d.collector_uid, coalesce(d.uid, '') AS uid, d.name, coalesce(d.platform, '') AS platform,
	coalesce(d.os_name, '') AS os_name, coalesce(d.os_version, '') AS os_version,
	coalesce(d.hardware_type, '') AS hardware_type, coalesce(d.hardware_manufacturer, '') AS hardware_manufacturer,
	coalesce(d.hardware_model, '') AS hardware_model, d.last_seen, d.refreshed_at`

// noUser fills a CachedDevice's user columns for queries about a device alone.
const noUser = `NULL::timestamptz AS last_activity, '' AS activity_source, '' AS user_name, '' AS user_full_name,
	'' AS user_upn, '' AS user_sid, '' AS matched_by`

// DevicesOfUser returns the devices of the users that matches select, on instance
// ("" for every instance), most recently active first (at most limit). matches are
// in order of preference: on each instance only the users of the first match that
// finds any count, so "CORP\jdoe" finds jdoe only where no user is named
// "CORP\jdoe". A device used by two matching users is answered once, for the one
// most recently active on it. One query.
func (db *DB) DevicesOfUser(ctx context.Context, matches []UserMatch, instance string, limit int) ([]CachedDevice, error) {
	if len(matches) == 0 {
		return nil, errors.New("devices of user: no match to look for")
	}
	args := []any{instance, limit}
	branches := make([]string, 0, len(matches))
	for rank, m := range matches {
		cond, ok := userConditions[m.Key]
		if !ok {
			return nil, fmt.Errorf("devices of user: unknown key %d", m.Key)
		}
		args = append(args, m.Value, m.MatchedBy)
		value, matchedBy := len(args)-1, len(args)
		branches = append(branches, fmt.Sprintf(`
			SELECT u.instance, u.name_key, u.name, coalesce(u.full_name, '') AS full_name, coalesce(u.upn, '') AS upn,
				coalesce(u.sid, '') AS sid, %d AS rank, $%d::text AS matched_by
			FROM users u WHERE %s AND ($1 = '' OR u.instance = $1)`,
			rank, matchedBy, strings.ReplaceAll(cond, "$N", fmt.Sprintf("$%d", value))))
	}
	rows, _ := db.pool.Query(ctx, `
		WITH matched AS (`+strings.Join(branches, " UNION ALL ")+`),
		best AS (
			SELECT * FROM matched m WHERE m.rank = (SELECT min(o.rank) FROM matched o WHERE o.instance = m.instance)
		)
		SELECT * FROM (
			SELECT DISTINCT ON (d.instance, d.collector_uid) `+deviceColumns+`,
				ud.last_activity, ud.source AS activity_source, b.name AS user_name, b.full_name AS user_full_name,
				b.upn AS user_upn, b.sid AS user_sid, b.matched_by
			FROM best b
			JOIN user_devices ud ON ud.instance = b.instance AND ud.user_key = b.name_key
			JOIN devices d ON d.collector_uid = ud.collector_uid AND d.instance = ud.instance
			ORDER BY d.instance, d.collector_uid, ud.last_activity DESC
		) m
		ORDER BY last_activity DESC NULLS LAST, last_seen DESC NULLS LAST, name, instance
		LIMIT $2`, args...)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[CachedDevice])
	if err != nil {
		return nil, fmt.Errorf("devices of user: %w", err)
	}
	return out, nil
}

// DeviceKey says which device attribute an identification matches.
type DeviceKey int

// The device attributes identification looks devices up by.
const (
	ByDeviceName DeviceKey = iota
	ByCollectorUID
)

var deviceConditions = map[DeviceKey]string{
	ByDeviceName:   `lower(d.name) = lower($1)`,
	ByCollectorUID: `d.collector_uid = lower($1)`,
}

// DevicesByKey returns the devices whose name or collector UID is value, on every
// instance, with their latest user activity, most recently active first.
func (db *DB) DevicesByKey(ctx context.Context, key DeviceKey, value string, limit int) ([]CachedDevice, error) {
	return db.DevicesByKeyOn(ctx, key, value, "", limit)
}

// DevicesByKeyOn is DevicesByKey on one instance ("" for every instance).
func (db *DB) DevicesByKeyOn(ctx context.Context, key DeviceKey, value, instance string, limit int) ([]CachedDevice, error) {
	cond, ok := deviceConditions[key]
	if !ok {
		return nil, fmt.Errorf("devices by key: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT `+deviceColumns+`, a.last_activity, coalesce(a.source, '') AS activity_source,
			coalesce(a.user_name, '') AS user_name, coalesce(a.full_name, '') AS user_full_name,
			coalesce(a.upn, '') AS user_upn, coalesce(a.sid, '') AS user_sid, '' AS matched_by
		FROM devices d
		LEFT JOIN LATERAL (
			SELECT ud.last_activity, ud.source, coalesce(u.name, ud.user_key) AS user_name, u.full_name, u.upn, u.sid
			FROM user_devices ud
			LEFT JOIN users u ON u.name_key = ud.user_key AND u.instance = ud.instance
			WHERE ud.collector_uid = d.collector_uid AND ud.instance = d.instance
			ORDER BY ud.last_activity DESC LIMIT 1
		) a ON true
		WHERE `+cond+` AND ($3 = '' OR d.instance = $3)
		ORDER BY a.last_activity DESC NULLS LAST, d.last_seen DESC NULLS LAST, d.instance
		LIMIT $2`, value, limit, instance)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[CachedDevice])
	if err != nil {
		return nil, fmt.Errorf("devices by key: %w", err)
	}
	return out, nil
}

// DeviceDetail is one cached device with its cached fields and its recent users.
type DeviceDetail struct {
	CachedDevice
	LastLogonUser string
	LastLogonTime *time.Time
	Fields        map[string]any
	Users         []DeviceUser
}

// DeviceUser is a user's latest activity on a device.
type DeviceUser struct {
	Name         string    `db:"name"`
	FullName     string    `db:"full_name"`
	UPN          string    `db:"upn"`
	LastActivity time.Time `db:"last_activity"`
	Source       string    `db:"source"`
}

type deviceRow struct {
	CachedDevice
	LastLogonUser string         `db:"last_logon_user"`
	LastLogonTime *time.Time     `db:"last_logon_time"`
	Fields        map[string]any `db:"fields"`
}

// DeviceFields is a cached device with the fields discovery cached for it.
type DeviceFields struct {
	CachedDevice
	Fields map[string]any `db:"fields"`
}

// DeviceWithFields returns, in one query, the most recently seen device whose name or
// collector UID is value, on any instance, with its cached fields; ErrNotFound when
// the cache has none.
func (db *DB) DeviceWithFields(ctx context.Context, key DeviceKey, value string) (DeviceFields, error) {
	cond, ok := deviceConditions[key]
	if !ok {
		return DeviceFields{}, fmt.Errorf("device with fields: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT `+deviceColumns+`, `+noUser+`,
			coalesce(d.last_logon_user, '') AS last_logon_user, d.last_logon_time, d.fields
		FROM devices d WHERE `+cond+`
		ORDER BY d.last_seen DESC NULLS LAST, d.instance LIMIT 1`, value)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[deviceRow])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return DeviceFields{}, ErrNotFound
	case err != nil:
		return DeviceFields{}, fmt.Errorf("device with fields: %w", err)
	}
	return DeviceFields{CachedDevice: d.CachedDevice, Fields: withColumnFields(d.Fields, d.CachedDevice, d.LastLogonUser, d.LastLogonTime)}, nil
}

// Discovery leaves out of a device's fields JSON the identification fields that its
// columns hold as the JSON would (they were half the bytes COPY wrote);
// withColumnFields puts them back for readers. A field the JSON has stays as it is:
// a date-time that did not parse, a collector UID not in lower case, a row written
// before.
func withColumnFields(f map[string]any, d CachedDevice, logonUser string, logonTime *time.Time) map[string]any {
	if f == nil {
		f = map[string]any{}
	}
	put := func(field string, v any) {
		if _, ok := f[field]; !ok {
			f[field] = v
		}
	}
	text := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	dateTime := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	put("device.collector.uid", text(d.CollectorUID))
	put("device.uid", text(d.UID))
	put("device.name", text(d.Name))
	put("device.operating_system.platform", text(d.Platform))
	put("device.operating_system.name", text(d.OSName))
	put("device.operating_system.version", text(d.OSVersion))
	put("device.hardware.type", text(d.HardwareType))
	put("device.hardware.manufacturer", text(d.HardwareManufacturer))
	put("device.hardware.model", text(d.HardwareModel))
	put("device.last_seen", dateTime(d.LastSeen))
	put("device.login.last_login_user_name", text(logonUser))
	put("device.login.last_login_time", dateTime(logonTime))
	return f
}

// DeviceDetails returns the devices whose name or collector UID is value, on instance
// ("" for every instance), most recently seen first, each with its cached fields; the
// first, the one callers answer with, with its latest 20 users. Two queries, however
// many match.
func (db *DB) DeviceDetails(ctx context.Context, key DeviceKey, value, instance string) ([]DeviceDetail, error) {
	cond, ok := deviceConditions[key]
	if !ok {
		return nil, fmt.Errorf("device details: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT `+deviceColumns+`, `+noUser+`,
			coalesce(d.last_logon_user, '') AS last_logon_user, d.last_logon_time, d.fields
		FROM devices d WHERE `+cond+` AND ($2 = '' OR d.instance = $2)
		ORDER BY d.last_seen DESC NULLS LAST, d.instance LIMIT 10`, value, instance)
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[deviceRow])
	if err != nil {
		return nil, fmt.Errorf("device details: %w", err)
	}
	out := make([]DeviceDetail, 0, len(found))
	for k, f := range found {
		d := DeviceDetail{CachedDevice: f.CachedDevice, LastLogonUser: f.LastLogonUser,
			LastLogonTime: f.LastLogonTime, Fields: withColumnFields(f.Fields, f.CachedDevice, f.LastLogonUser, f.LastLogonTime)}
		if k > 0 {
			out = append(out, d)
			continue
		}
		rows, _ := db.pool.Query(ctx, `
			SELECT coalesce(u.name, ud.user_key) AS name, coalesce(u.full_name, '') AS full_name, coalesce(u.upn, '') AS upn,
				ud.last_activity, ud.source
			FROM user_devices ud
			LEFT JOIN users u ON u.name_key = ud.user_key AND u.instance = ud.instance
			WHERE ud.collector_uid = $1 AND ud.instance = $2
			ORDER BY ud.last_activity DESC LIMIT 20`, f.CollectorUID, f.Instance)
		users, err := pgx.CollectRows(rows, pgx.RowToStructByName[DeviceUser])
		if err != nil {
			return nil, fmt.Errorf("device users: %w", err)
		}
		d.Users = users
		if len(users) > 0 {
			d.LastActivity, d.ActivitySource, d.User = &users[0].LastActivity, users[0].Source, users[0].Name
			d.UserFullName, d.UserUPN = users[0].FullName, users[0].UPN
		}
		out = append(out, d)
	}
	return out, nil
}

// CacheSize counts an instance's cached rows.
type CacheSize struct {
	Instance   string `db:"instance"`
	Devices    int64  `db:"devices"`
	Users      int64  `db:"users"`
	Activities int64  `db:"activities"`
}

// CacheSizes counts the cached rows of every instance that has any.
func (db *DB) CacheSizes(ctx context.Context) (map[string]CacheSize, error) {
	rows, _ := db.pool.Query(ctx, `
		SELECT i.name AS instance,
			(SELECT count(*) FROM devices WHERE instance = i.name) AS devices,
			(SELECT count(*) FROM users WHERE instance = i.name) AS users,
			(SELECT count(*) FROM user_devices WHERE instance = i.name) AS activities
		FROM instances i`)
	sizes, err := pgx.CollectRows(rows, pgx.RowToStructByName[CacheSize])
	if err != nil {
		return nil, fmt.Errorf("cache sizes: %w", err)
	}
	out := make(map[string]CacheSize, len(sizes))
	for _, s := range sizes {
		out[s.Instance] = s
	}
	return out, nil
}
