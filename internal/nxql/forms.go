package nxql

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Form is the NXQL form of a saved NQL query: the queries an Engine runs for it,
// how their rows merge, and which NXQL column answers each NQL column, so a
// result reads the same whichever upstream produced it. testdata/queries.yaml
// documents the fields; topics and the queries file carry forms under nxql:.
type Form struct {
	ID string `yaml:"id"`
	// Params are the NQL parameters in p1, p2, ... order (%1, %2, ... in Text).
	Params []string `yaml:"params"`
	// PlatformParam names the NQL parameter that the Engine request's platform
	// parameter replaces (Windows -> windows, macOS -> mac_os).
	PlatformParam string `yaml:"platform_param"`
	// Key is the column the rows of several queries merge on.
	Key string `yaml:"key"`
	// Window, when set ("30d"), is the activity period the queries select as
	// now-<window>: a driver may put its own period there (USER_ACTIVITY_PERIOD).
	Window string `yaml:"window"`
	// Dynamic says the queries also select the Engine's dynamic fields with a
	// wildcard (#*): every #-column of the answer but remote-action fields is kept
	// under its NQL name (DynamicName). Discovery's device query does, so the
	// tenant's categories and scores are cached without being configured.
	Dynamic  bool                 `yaml:"dynamic"`
	NXQL     []FormQuery          `yaml:"nxql"`
	Columns  map[string]ColumnMap `yaml:"columns"`
	Unmapped map[string]string    `yaml:"unmapped"`
}

// FormQuery is one NXQL query of a form; a row missing from a query after the
// first takes Missing's value for its columns (else null).
type FormQuery struct {
	Text    string         `yaml:"text"`
	Missing map[string]any `yaml:"missing"`
}

// ColumnMap is the NXQL column answering an NQL column, written as its name or as
// {column, map, divide}: map translates enumeration tokens, divide scales.
type ColumnMap struct {
	Column string            `yaml:"column"`
	Map    map[string]string `yaml:"map"`
	Divide float64           `yaml:"divide"`
}

// UnmarshalYAML takes the short form (the column's name) too.
func (c *ColumnMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.Column = n.Value
		return nil
	}
	type plain ColumnMap
	return n.Decode((*plain)(c))
}

// ParseForms reads a document with a queries list of forms (testdata/queries.yaml's
// shape); unknown keys are errors.
func ParseForms(b []byte) ([]Form, error) {
	var doc struct {
		Queries []Form `yaml:"queries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc.Queries, nil
}

// Check compiles every query of the form against s (parameters unsubstituted, as
// written) and checks that the form is complete: at least one query, a key when
// there are several, a column for every mapping.
func (f *Form) Check(s *Schema) error {
	if len(f.NXQL) == 0 {
		return errors.New("no NXQL query")
	}
	if len(f.NXQL) > 1 && f.Key == "" {
		return errors.New("several NXQL queries need a key to merge on")
	}
	if len(f.Columns) == 0 {
		return errors.New("no columns: nothing maps the NXQL results to the NQL columns")
	}
	if f.Window != "" {
		if _, ok := parseTime("now-" + f.Window); !ok {
			return fmt.Errorf("window %q: want a period such as 30d", f.Window)
		}
		for k, q := range f.NXQL {
			if !strings.Contains(q.Text, "now-"+f.Window) {
				return fmt.Errorf("nxql[%d]: no now-%s for the window", k, f.Window)
			}
		}
	}
	cols := map[string]bool{}
	for k, q := range f.NXQL {
		cq, err := Compile(q.Text, s)
		if err != nil {
			return fmt.Errorf("nxql[%d]: %w", k, err)
		}
		for _, c := range cq.Columns() {
			cols[c] = true
		}
	}
	for nqlCol, c := range f.Columns {
		if !cols[c.Column] {
			return fmt.Errorf("columns.%s: no NXQL query selects %s", nqlCol, c.Column)
		}
	}
	return nil
}

// Text is query k's text for an activity period: the window's now-<window>
// becomes now-<period> (whole hours at least); period 0 keeps the text.
func (f *Form) Text(k int, period time.Duration) string {
	t := f.NXQL[k].Text
	if f.Window == "" || period <= 0 {
		return t
	}
	p := strconv.FormatInt(int64(period/time.Hour), 10) + "h"
	if period%(24*time.Hour) == 0 {
		p = strconv.FormatInt(int64(period/(24*time.Hour)), 10) + "d"
	}
	if period < time.Hour {
		p = "1h"
	}
	return strings.ReplaceAll(t, "now-"+f.Window, "now-"+p)
}

// Args are the Engine's p1, p2, ... for the NQL parameters.
func (f *Form) Args(params map[string]string) []string {
	out := make([]string, len(f.Params))
	for k, p := range f.Params {
		out[k] = params[p]
	}
	return out
}

// Platforms are the platform tokens of the Engine request: the one the platform
// parameter names, else Windows and macOS.
func (f *Form) Platforms(params map[string]string) ([]string, error) {
	if f.PlatformParam == "" {
		return []string{"windows", "mac_os"}, nil
	}
	switch v := params[f.PlatformParam]; strings.ToLower(v) {
	case "windows":
		return []string{"windows"}, nil
	case "macos", "mac_os":
		return []string{"mac_os"}, nil
	default:
		return nil, fmt.Errorf("parameter %s: want Windows or macOS, got %q", f.PlatformParam, v)
	}
}

// Merge joins the rows of the form's queries (results[k] answers NXQL[k], each
// row keyed by NXQL column): the first query's rows are the result, the others add
// their columns by key, or Missing's values for a row they do not have.
func (f *Form) Merge(results [][]map[string]any) []map[string]any {
	if len(results) == 0 {
		return nil
	}
	records := results[0]
	for k := 1; k < len(results) && k < len(f.NXQL); k++ {
		byKey := map[any]map[string]any{}
		cols := map[string]bool{}
		for _, r := range results[k] {
			byKey[keyOf(r[f.Key])] = r
			for c := range r {
				cols[c] = true
			}
		}
		for c := range f.NXQL[k].Missing {
			cols[c] = true
		}
		for _, rec := range records {
			other, ok := byKey[keyOf(rec[f.Key])]
			for c := range cols {
				if c == f.Key {
					continue
				}
				if ok {
					rec[c] = other[c]
				} else {
					rec[c] = missingValue(f.NXQL[k].Missing[c])
				}
			}
		}
	}
	return records
}

// keyOf makes a merge key comparable whatever its decoded type.
func keyOf(v any) any {
	if s, ok := v.(string); ok {
		return strings.ToLower(s)
	}
	return fmt.Sprint(v)
}

func missingValue(v any) any {
	if n, ok := v.(int); ok {
		return int64(n)
	}
	return v
}

// ToNQL renames a merged record's NXQL columns to the NQL columns they answer,
// translating enumerations and scaling numbers. A column the record lacks is
// null.
func (f *Form) ToNQL(rec map[string]any) map[string]any {
	out := make(map[string]any, len(f.Columns))
	for nqlCol, c := range f.Columns {
		v := rec[c.Column]
		if s, ok := v.(string); ok && c.Map != nil {
			if m, ok := c.Map[s]; ok {
				v = m
			}
		}
		if c.Divide != 0 && v != nil {
			switch n := v.(type) {
			case int64:
				v = float64(n) / c.Divide
			case float64:
				v = n / c.Divide
			}
		}
		out[nqlCol] = v
	}
	if f.Dynamic {
		for c, v := range rec {
			if n, ok := DynamicName(c); ok {
				out[n] = v
			}
		}
	}
	return out
}

// DynamicName is the NQL name of an Engine's dynamic-field column (a category
// "#Location" or a score "#score:Device health/Restart", as results name them):
// device.#location and device.score.device_health.restart, each name lowercased
// with its runs of other characters than letters and digits made one '_'. ok is
// false for another column, and for a remote action's field ("#action:..."),
// which is not the tenant's own.
func DynamicName(column string) (string, bool) {
	rest, ok := strings.CutPrefix(column, "#")
	if !ok || strings.HasPrefix(rest, "action:") {
		return "", false
	}
	if score, ok := strings.CutPrefix(rest, "score:"); ok {
		parts := strings.Split(score, "/")
		for k, p := range parts {
			if parts[k] = slug(p); parts[k] == "" {
				return "", false
			}
		}
		return "device.score." + strings.Join(parts, "."), true
	}
	if s := slug(rest); s != "" {
		return "device.#" + s, true
	}
	return "", false
}

// slug lowercases s and makes each run of other characters than ASCII letters and
// digits one '_', trimmed at both ends.
func slug(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			gap = false
			continue
		}
		gap = true
	}
	return b.String()
}

// FormSpec is a Form as a saved query carries it under nxql: (in a topic or the
// queries file), the id being the query's and the NXQL list named queries.
type FormSpec struct {
	Params        []string             `yaml:"params"`
	PlatformParam string               `yaml:"platform_param"`
	Key           string               `yaml:"key"`
	Window        string               `yaml:"window"`
	Dynamic       bool                 `yaml:"dynamic"`
	Queries       []FormQuery          `yaml:"queries"`
	Columns       map[string]ColumnMap `yaml:"columns"`
	Unmapped      map[string]string    `yaml:"unmapped"`
}

// Form is the spec as the Form of query id.
func (s FormSpec) Form(id string) Form {
	return Form{ID: id, Params: s.Params, PlatformParam: s.PlatformParam, Key: s.Key, Window: s.Window, Dynamic: s.Dynamic, NXQL: s.Queries,
		Columns: s.Columns, Unmapped: s.Unmapped}
}
