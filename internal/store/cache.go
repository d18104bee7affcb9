package store

import (
	"context"
	"errors"
	"fmt"
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
	User                 string     `db:"user_name"`       // whose activity LastActivity is
	RefreshedAt          time.Time  `db:"refreshed_at"`
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

// Each condition uses one of the users indexes.
var userConditions = map[UserKey]string{
	ByUserName: `u.name_key = lower($1)`,
	ByUPN:      `lower(u.upn) = lower($1)`,
	ByEmail:    `lower(u.email) = lower($1)`,
	BySID:      `u.sid = upper($1)`,
}

const deviceColumns = `d.instance, d.collector_uid, coalesce(d.uid, '') AS uid, d.name, coalesce(d.platform, '') AS platform,
	coalesce(d.os_name, '') AS os_name, coalesce(d.os_version, '') AS os_version,
	coalesce(d.hardware_type, '') AS hardware_type, coalesce(d.hardware_manufacturer, '') AS hardware_manufacturer,
	coalesce(d.hardware_model, '') AS hardware_model, d.last_seen, d.refreshed_at`

// DevicesOfUser returns the devices of the users matching value by key, on every
// instance, most recently active first (at most limit).
func (db *DB) DevicesOfUser(ctx context.Context, key UserKey, value string, limit int) ([]CachedDevice, error) {
	cond, ok := userConditions[key]
	if !ok {
		return nil, fmt.Errorf("devices of user: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT * FROM (
			SELECT DISTINCT ON (d.instance, d.collector_uid) `+deviceColumns+`,
				ud.last_activity, ud.source AS activity_source, u.name AS user_name
			FROM users u
			JOIN user_devices ud ON ud.instance = u.instance AND ud.user_key = u.name_key
			JOIN devices d ON d.collector_uid = ud.collector_uid AND d.instance = ud.instance
			WHERE `+cond+`
			ORDER BY d.instance, d.collector_uid, ud.last_activity DESC
		) m
		ORDER BY last_activity DESC NULLS LAST, last_seen DESC NULLS LAST, name
		LIMIT $2`, value, limit)
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
	cond, ok := deviceConditions[key]
	if !ok {
		return nil, fmt.Errorf("devices by key: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT `+deviceColumns+`, a.last_activity, coalesce(a.source, '') AS activity_source,
			coalesce(a.user_name, '') AS user_name
		FROM devices d
		LEFT JOIN LATERAL (
			SELECT ud.last_activity, ud.source, coalesce(u.name, ud.user_key) AS user_name
			FROM user_devices ud
			LEFT JOIN users u ON u.name_key = ud.user_key AND u.instance = ud.instance
			WHERE ud.collector_uid = d.collector_uid AND ud.instance = d.instance
			ORDER BY ud.last_activity DESC LIMIT 1
		) a ON true
		WHERE `+cond+`
		ORDER BY a.last_activity DESC NULLS LAST, d.last_seen DESC NULLS LAST, d.instance
		LIMIT $2`, value, limit)
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
		SELECT `+deviceColumns+`, NULL::timestamptz AS last_activity, '' AS activity_source, '' AS user_name, d.fields
		FROM devices d WHERE `+cond+`
		ORDER BY d.last_seen DESC NULLS LAST, d.instance LIMIT 1`, value)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DeviceFields])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return DeviceFields{}, ErrNotFound
	case err != nil:
		return DeviceFields{}, fmt.Errorf("device with fields: %w", err)
	}
	return d, nil
}

// DeviceDetails returns the devices whose name or collector UID is value, on every
// instance, most recently seen first, each with its cached fields; the first, the
// one callers answer with, with its latest 20 users. Two queries, however many match.
func (db *DB) DeviceDetails(ctx context.Context, key DeviceKey, value string) ([]DeviceDetail, error) {
	cond, ok := deviceConditions[key]
	if !ok {
		return nil, fmt.Errorf("device details: unknown key %d", key)
	}
	rows, _ := db.pool.Query(ctx, `
		SELECT `+deviceColumns+`, NULL::timestamptz AS last_activity, '' AS activity_source, '' AS user_name,
			coalesce(d.last_logon_user, '') AS last_logon_user, d.last_logon_time, d.fields
		FROM devices d WHERE `+cond+`
		ORDER BY d.last_seen DESC NULLS LAST, d.instance LIMIT 10`, value)
	found, err := pgx.CollectRows(rows, pgx.RowToStructByName[deviceRow])
	if err != nil {
		return nil, fmt.Errorf("device details: %w", err)
	}
	out := make([]DeviceDetail, 0, len(found))
	for k, f := range found {
		d := DeviceDetail{CachedDevice: f.CachedDevice, LastLogonUser: f.LastLogonUser,
			LastLogonTime: f.LastLogonTime, Fields: f.Fields}
		if k > 0 {
			out = append(out, d)
			continue
		}
		rows, _ := db.pool.Query(ctx, `
			SELECT coalesce(u.name, ud.user_key) AS name, coalesce(u.upn, '') AS upn, ud.last_activity, ud.source
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
