package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// The saved queries discovery exports, by id. Each must be saved in the tenant under
// this id with the text of config/queries.yaml (nxsim loads that file).
const (
	// QueryDevices lists the devices of one platform seen in the period, with the
	// identification fields and the cached fields. Parameter: platform.
	QueryDevices = "#dexbridge_discovery_devices"
	// QueryUsers lists the users with their UPN, SID, e-mail address and full name.
	QueryUsers = "#dexbridge_discovery_users"
	// QueryActivity lists, per device of one platform and user, the user's latest
	// session activity in the period. Parameter: platform.
	QueryActivity = "#dexbridge_discovery_activity"
)

// Platforms are the platforms discovery asks for, one export each.
var platforms = [...]string{"Windows", "macOS"}

// QueryWindow is the timeframe the saved discovery queries select: the default
// USER_ACTIVITY_PERIOD. A longer period needs the queries' timeframe changed too.
const QueryWindow = "30d"

// IdentificationFields are the device fields identification and the cache's columns
// need, always cached, in the order the device query lists them.
func IdentificationFields() []string {
	return []string{
		"device.collector.uid", "device.uid", "device.name",
		"device.operating_system.platform", "device.operating_system.name", "device.operating_system.version",
		"device.hardware.type", "device.hardware.manufacturer", "device.hardware.model",
		"device.last_seen", "device.login.last_login_user_name", "device.login.last_login_time",
	}
}

// CachedFields is the list of device fields discovery caches: the identification
// fields, then (sorted) the fields of every device-only query of the topics, the
// queries the cache can answer, or, when override is not nil, the fields it lists.
// Every field must be a plain device field. The tenant's own dynamic fields are
// not listed here: discovery caches those the device export returns.
func CachedFields(set *topic.Set, override []string) ([]string, error) {
	schema := nql.DefaultSchema()
	extra := map[string]bool{}
	if override != nil {
		for _, f := range override {
			if !schema.IsDeviceField(f) {
				return nil, fmt.Errorf("cached field %q: not a fully qualified field of the devices table", f)
			}
			extra[f] = true
		}
	} else if set != nil {
		for _, p := range set.Topics() {
			for _, q := range p.Queries() {
				if !q.Analysis.DeviceOnly {
					continue
				}
				for _, f := range q.Analysis.Fields {
					if schema.IsDeviceField(f) {
						extra[f] = true
					}
				}
			}
		}
	}
	out := IdentificationFields()
	for _, f := range out {
		delete(extra, f)
	}
	rest := make([]string, 0, len(extra))
	for f := range extra {
		rest = append(rest, f)
	}
	sort.Strings(rest)
	return append(out, rest...), nil
}

// LoadCachedFields reads a cached-fields file:
//
//	# fields discovery caches per device, fully qualified
//	fields:
//	  - device.hardware.memory
//	  - device.boot.days_since_last_full_boot
//
// The identification fields are cached whatever the file says.
func LoadCachedFields(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cached fields: %w", err)
	}
	var doc struct {
		Fields []string `yaml:"fields"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cached fields %s: %w", path, err)
	}
	if doc.Fields == nil {
		doc.Fields = []string{}
	}
	schema := nql.DefaultSchema()
	var errs []error
	for i, f := range doc.Fields {
		if !schema.IsDeviceField(f) {
			errs = append(errs, fmt.Errorf("cached fields %s: fields[%d]: %q is not a fully qualified field of the devices table", path, i, f))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return doc.Fields, nil
}

// DeviceQuery is the NQL text of QueryDevices for a list of cached fields: what to
// save in the tenant (config/queries.yaml holds it for the default list).
func DeviceQuery(fields []string) string {
	var b strings.Builder
	b.WriteString("devices during past " + QueryWindow + "\n")
	b.WriteString("| where operating_system.platform == $platform\n")
	b.WriteString("| list ")
	line := len("| list ")
	for k, f := range fields {
		item := f
		if k < len(fields)-1 {
			item += ","
		}
		if k > 0 {
			if line+1+len(item) > 88 {
				b.WriteString("\n  ")
				line = 2
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(item)
		line += len(item)
	}
	b.WriteByte('\n')
	return b.String()
}

// UsersQuery and ActivityQuery are the NQL texts of QueryUsers and QueryActivity.
const (
	UsersQuery = `users
| list user.name, user.upn, user.sid, user.ad.email_address, user.ad.full_name
`
	ActivityQuery = `session.events during past ` + QueryWindow + `
| where device.operating_system.platform == $platform
| summarize last_activity = end_time.max() by device.collector.uid, user.name
`
)

// SameQuery compares NQL texts, ignoring layout (runs of blanks and line breaks).
func SameQuery(a, b string) bool {
	return slices.Equal(strings.Fields(a), strings.Fields(b))
}
