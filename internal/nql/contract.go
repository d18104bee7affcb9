// Package nql parses, analyses and evaluates the subset of the Nexthink Query Language
// that dexbridge and nxsim need.
//
// Three parties share it: nxsim evaluates saved queries over its synthetic fleet, the
// dexbridge NQL wrapper evaluates device-only queries over one cached device, and
// `dexbridge check` and discovery analyse queries (parameters, listed fields, whether a
// query selects one device, whether it needs live data).
//
// This file is the contract between them; the parser and evaluator implement it.
package nql

import (
	"context"
	"time"
)

// Value is one cell: nil, string, int64, float64, bool or time.Time (UTC).
type Value = any

// Row is one row of a table as a Source presents it.
type Row interface {
	// Value returns the value of a fully qualified field ("device.name",
	// "session.events.end_time", "user.name" on an event that links a user,
	// "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus" on a
	// device), or nil when the row has no such value.
	Value(field string) Value
}

// Window is a resolved timeframe, From inclusive, To exclusive. The zero Window means
// no timeframe was given.
type Window struct {
	From, To time.Time
}

// Source is the data a query runs over.
type Source interface {
	// Scan calls fn for each row of a primary table ("devices", "users",
	// "remote_action.executions", "session.events", ...). A Source may use w to skip
	// rows; the evaluator filters on the table's time field anyway. Returning a
	// non-nil error from fn stops the scan and Scan returns that error.
	Scan(ctx context.Context, table string, w Window, fn func(Row) error) error
	// Related calls fn for each row of an event or inventory table
	// ("session.events", "package.installed_packages", "device_performance.events",
	// "execution.crashes") linked to the object row obj (a device or a user).
	Related(ctx context.Context, obj Row, table string, w Window, fn func(Row) error) error
}

// Indexer is an optional interface of a Source: the evaluator uses it instead of a
// full Scan when a query starts with an equality or `in` filter on an indexed field
// of its primary table.
type Indexer interface {
	// Lookup returns the rows of table whose field equals one of values, and false
	// when the field is not indexed.
	Lookup(ctx context.Context, table, field string, values []string) ([]Row, bool)
}

// RelatedIndexer is an optional interface of a Source: the evaluator uses it instead
// of a full Scan when a with is filtered by an equality or `in` on a field of its
// table (devices with session.events where user.name == $username).
type RelatedIndexer interface {
	// LookupRelated returns the rows of table that may have a related row in
	// related whose field equals one of values (a superset is fine: the evaluator
	// still joins and filters them), and false when the field is not indexed.
	LookupRelated(ctx context.Context, table, related, field string, values []string) ([]Row, bool)
}

// Result is the outcome of running a query: headers are fully qualified field names
// (or computed names such as "outdated_office_packages") in list order.
type Result struct {
	Headers []string
	Rows    [][]Value
}

// Error is a parse or compile error with its position in the query text (1-based).
type Error struct {
	Line, Column int
	Msg          string
}

func (e *Error) Error() string { return formatError(e) }

// Analysis describes a compiled query for callers that decide how to answer it.
type Analysis struct {
	Table      string   // primary table: "devices", "remote_action.executions", ...
	Joins      []string // tables joined with `with` or `include`, in order
	Parameters []string // parameter names without `$`, in order of first use
	Headers    []string // output columns, as in Result.Headers
	// Types are the types of the output columns, one per header: a computed column
	// has the type of its expression (TypeAny when only the data knows).
	Types []FieldType
	// Limit is the query's own limit clause, -1 without one.
	Limit int
	// Fields lists every fully qualified field the query reads, from any clause.
	Fields []string
	// DeviceKey is set when the query's first filter selects one device by an
	// equality on device.name or device.collector.uid against a parameter:
	// DeviceKey.Field is that field and DeviceKey.Parameter the parameter name.
	DeviceKey *DeviceKey
	// DeviceOnly is true when the query's primary table is devices, it joins nothing,
	// and every field it reads is a plain device field (no remote_action.* fields).
	// Such a query can be answered from a cached copy of the device's fields.
	DeviceOnly bool
}

// DeviceKey names the filter that selects a single device.
type DeviceKey struct {
	Field     string
	Parameter string
}
