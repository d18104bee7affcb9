package wrapper

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
)

// deviceSource is an nql.Source of one device, its cached fields: the same
// interpreter nxsim runs over its fleet runs here over one cached row.
type deviceSource struct {
	row cachedRow
}

func (s deviceSource) Scan(_ context.Context, table string, _ nql.Window, fn func(nql.Row) error) error {
	if table != "devices" {
		return fmt.Errorf("the cache holds devices, not %s", table)
	}
	return fn(s.row)
}

func (s deviceSource) Related(_ context.Context, _ nql.Row, table string, _ nql.Window, _ func(nql.Row) error) error {
	return fmt.Errorf("the cache holds no %s", table)
}

// cachedRow is a device's cached fields, typed as the NQL schema declares them:
// the cache keeps JSON, whose numbers arrive as float64 and times as text.
type cachedRow struct {
	fields map[string]any
	types  map[string]nql.FieldType
}

func (r cachedRow) Value(field string) nql.Value {
	v, ok := r.fields[field]
	if !ok || v == nil {
		return nil
	}
	return typed(v, r.types[field])
}

// typed converts a cached JSON value to the Value type of its field.
func typed(v any, t nql.FieldType) nql.Value {
	switch t {
	case nql.TypeInt:
		switch x := v.(type) {
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x)
			}
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i
			}
		case string:
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return i
			}
		}
	case nql.TypeFloat:
		switch x := v.(type) {
		case json.Number:
			if f, err := x.Float64(); err == nil {
				return f
			}
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f
			}
		}
	case nql.TypeBool:
		if x, ok := v.(string); ok {
			if b, err := strconv.ParseBool(x); err == nil {
				return b
			}
		}
	case nql.TypeDateTime:
		if tm, ok := nexthink.ParseTime(v); ok {
			return tm
		}
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return f
	}
	return v
}

// deviceFieldTypes are the types of the devices table's fields.
func deviceFieldTypes() map[string]nql.FieldType {
	out := map[string]nql.FieldType{}
	if t, ok := nql.DefaultSchema().Table("devices"); ok {
		for _, f := range t.Fields {
			out[f.Name] = f.Type
		}
	}
	return out
}

// cell renders an evaluated value as an answer carries it: times as RFC 3339 UTC text
// (as the NQL API returns them), everything else as it is.
func cell(v nql.Value) any {
	if t, ok := v.(time.Time); ok {
		return nexthink.FormatTime(t)
	}
	return v
}
