package discovery

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/store"
)

// columns maps the header of a results file to positions, and says which required
// columns are missing: the query saved in the tenant is not the one dexbridge expects.
func columns(queryID string, header, required []string) (map[string]int, error) {
	idx := make(map[string]int, len(header))
	for k, h := range header {
		idx[strings.TrimSpace(h)] = k
	}
	var missing []string
	for _, r := range required {
		if _, ok := idx[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the results of %s lack %s: save the query of config/queries.yaml in the tenant",
			queryID, strings.Join(missing, ", "))
	}
	return idx, nil
}

func cell(rec []string, k int) string {
	if k < 0 || k >= len(rec) {
		return ""
	}
	return rec[k]
}

func timeCell(rec []string, k int) *time.Time {
	t, ok := nexthink.ParseTime(cell(rec, k))
	if !ok {
		return nil
	}
	return &t
}

// deviceDecoder turns device records into staged devices with their cached fields
// as a JSON object typed by the NQL schema.
type deviceDecoder struct {
	uid, id, name, platform, osName, osVersion, hwType, hwMaker, hwModel int
	lastSeen, logonUser, logonTime                                       int
	cached                                                               []cachedColumn
	missing                                                              []string // cached fields the results lack
	dynamic                                                              []string // the tenant's dynamic fields the results hold
}

type cachedColumn struct {
	key []byte // the JSON-encoded field name, with its colon
	col int
	typ nql.FieldType
	// inColumn: the cache has the field in a column of its own, from which readers
	// put it back (the store's withColumnFields) when the JSON leaves it out.
	inColumn bool
}

// inColumns are the fields the cache keeps in columns of their own: the
// identification fields.
var inColumns = func() map[string]bool {
	out := map[string]bool{}
	for _, f := range IdentificationFields() {
		out[f] = true
	}
	return out
}()

// restorable says whether the cache's column gives back a cell of a field kept in a
// column as the JSON would hold it: a collector UID is kept in lower case, a
// date-time only when it parses, and text only when it is valid UTF-8.
func (c cachedColumn) restorable(s string) bool {
	switch {
	case !c.inColumn || s == "":
		return c.inColumn
	case c.typ == nql.TypeDateTime:
		_, ok := nexthink.ParseTime(s)
		return ok
	case string(c.key) == `"device.collector.uid":`:
		return strings.ToLower(s) == s
	}
	return c.typ == nql.TypeString && utf8.ValidString(s)
}

func newDeviceDecoder(header []string, fields []string) (*deviceDecoder, error) {
	idx, err := columns(QueryDevices, header, IdentificationFields())
	if err != nil {
		return nil, err
	}
	d := &deviceDecoder{
		uid: idx["device.collector.uid"], id: idx["device.uid"], name: idx["device.name"],
		platform: idx["device.operating_system.platform"], osName: idx["device.operating_system.name"],
		osVersion: idx["device.operating_system.version"], hwType: idx["device.hardware.type"],
		hwMaker: idx["device.hardware.manufacturer"], hwModel: idx["device.hardware.model"],
		lastSeen: idx["device.last_seen"], logonUser: idx["device.login.last_login_user_name"],
		logonTime: idx["device.login.last_login_time"],
	}
	types := fieldTypes()
	for _, f := range fields {
		k, ok := idx[f]
		if !ok {
			d.missing = append(d.missing, f)
			continue
		}
		key := appendJSONString(nil, f)
		d.cached = append(d.cached, cachedColumn{key: append(key, ':'), col: k, typ: types[f], inColumn: inColumns[f]})
	}
	// The dynamic fields step: the custom fields, categories and scores the tenant
	// defines are the results' columns named as such, cached beside the configured
	// fields (the final list of the seed's discovery).
	configured := make(map[string]bool, len(fields))
	for _, f := range fields {
		configured[f] = true
	}
	for k, h := range header {
		h = strings.TrimSpace(h)
		if !nql.IsDynamicField(h) || configured[h] {
			continue
		}
		configured[h] = true
		d.dynamic = append(d.dynamic, h)
		key := appendJSONString(nil, h)
		d.cached = append(d.cached, cachedColumn{key: append(key, ':'), col: k, typ: nql.TypeAny})
	}
	return d, nil
}

func fieldTypes() map[string]nql.FieldType {
	out := map[string]nql.FieldType{}
	if t, ok := nql.DefaultSchema().Table("devices"); ok {
		for _, f := range t.Fields {
			out[f.Name] = f.Type
		}
	}
	return out
}

func (d *deviceDecoder) decode(rec []string) *store.StagedDevice {
	return &store.StagedDevice{
		CollectorUID: strings.ToLower(cell(rec, d.uid)), UID: cell(rec, d.id), Name: cell(rec, d.name),
		Platform: cell(rec, d.platform), OSName: cell(rec, d.osName), OSVersion: cell(rec, d.osVersion),
		HardwareType: cell(rec, d.hwType), HardwareManufacturer: cell(rec, d.hwMaker), HardwareModel: cell(rec, d.hwModel),
		LastSeen: timeCell(rec, d.lastSeen), LastLogonUser: cell(rec, d.logonUser), LastLogonTime: timeCell(rec, d.logonTime),
		Fields: d.fields(rec),
	}
}

// fields encodes the cached fields of a record as a JSON object: numbers and booleans
// as such when they parse, date-times in RFC 3339 UTC, empty cells as null; the
// fields the device's columns give back as such are left out (restorable).
func (d *deviceDecoder) fields(rec []string) []byte {
	b := make([]byte, 0, 32*len(d.cached))
	b = append(b, '{')
	for _, c := range d.cached {
		v := cell(rec, c.col)
		if c.restorable(v) {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, c.key...)
		b = appendValue(b, v, c.typ)
	}
	return append(b, '}')
}

func appendValue(b []byte, s string, typ nql.FieldType) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	switch typ {
	case nql.TypeInt:
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(b, v, 10)
		}
	case nql.TypeFloat:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	case nql.TypeBool:
		if v, err := strconv.ParseBool(s); err == nil {
			return strconv.AppendBool(b, v)
		}
	case nql.TypeDateTime:
		if t, ok := nexthink.ParseTime(s); ok {
			return appendJSONString(b, t.Format(time.RFC3339))
		}
	case nql.TypeAny:
		// A dynamic field's type is the tenant's: a cell that is a number as
		// written ("7.5", not "007") is one.
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) &&
			strconv.FormatFloat(f, 'f', -1, 64) == s {
			return append(b, s...)
		}
	}
	return appendJSONString(b, s)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// userDecoder turns user records into staged users.
type userDecoder struct{ name, upn, sid, email, fullName int }

func newUserDecoder(header []string) (*userDecoder, error) {
	idx, err := columns(QueryUsers, header, []string{"user.name"})
	if err != nil {
		return nil, err
	}
	get := func(f string) int {
		if k, ok := idx[f]; ok {
			return k
		}
		return -1
	}
	return &userDecoder{name: idx["user.name"], upn: get("user.upn"), sid: get("user.sid"),
		email: get("user.ad.email_address"), fullName: get("user.ad.full_name")}, nil
}

func (d *userDecoder) decode(rec []string) *store.StagedUser {
	return &store.StagedUser{Name: cell(rec, d.name), UPN: cell(rec, d.upn), SID: cell(rec, d.sid),
		Email: cell(rec, d.email), FullName: cell(rec, d.fullName)}
}

// activityDecoder turns activity records into staged activity.
type activityDecoder struct{ uid, user, last int }

func newActivityDecoder(header []string) (*activityDecoder, error) {
	idx, err := columns(QueryActivity, header, []string{"device.collector.uid", "user.name", "last_activity"})
	if err != nil {
		return nil, err
	}
	return &activityDecoder{uid: idx["device.collector.uid"], user: idx["user.name"], last: idx["last_activity"]}, nil
}

func (d *activityDecoder) decode(rec []string) *store.StagedActivity {
	return &store.StagedActivity{CollectorUID: cell(rec, d.uid), UserName: cell(rec, d.user), LastActivity: timeCell(rec, d.last)}
}
