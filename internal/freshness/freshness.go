// Package freshness dates what a diagnosis reports. It merges the first row of each
// of a topic's queries into one set of fields and gives each value the time Nexthink
// had it: the collection time of a remote action's output
// (remote_action.<id>.execution.time), the device's last_seen for the device's own
// data (inventory fields, and what is computed from its events). The topic says
// which column dates which (topic.Dating).
//
// An output is the one its execution's time dates only when that execution
// succeeded. Nexthink exposes, per device, the last execution of a data-collection
// remote action: while a newer one is pending, in progress or waiting for the device
// (or after it failed or expired), the tenant shows that execution, whose outputs
// are empty. The value of the earlier collection is then the last known one: the
// caller keeps every successful value (Result.Collected) and hands them back
// (Input.Known), and Merge puts a kept value in place of the missing one, marked
// last_known with its own collection time.
package freshness

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// Answer is what one query returned for the device.
type Answer struct {
	Query *topic.SavedQuery // its ID and Dating
	Rows  []map[string]any  // by header; only the first row is about the device
}

// Known is a value dexbridge kept from a successful collection, and its time.
type Known struct {
	Value any
	At    time.Time
}

// Input is what Merge dates.
type Input struct {
	Answers []Answer
	// LastSeen is the device's last_seen as its resolution found it (the cache or a
	// live lookup), nil when unknown: it dates the device's own data when a query does
	// not list device.last_seen.
	LastSeen *time.Time
	// Known are the last known values of the device's outputs, by field.
	Known  map[string]Known
	Now    time.Time
	MaxAge time.Duration
}

// Result is the merged, dated answer.
type Result struct {
	Fields map[string]any
	Times  map[string]events.FieldTime
	// LastSeen is the latest time Nexthink is known to have heard from the device:
	// its last_seen, or a later collection the device reported.
	LastSeen *time.Time
	// DataAsOf is the time of the oldest value (null values are no data and do not
	// count); nil when no value could be dated.
	DataAsOf *time.Time
	Stale    bool // DataAsOf is older than MaxAge
	// Undated lists the values that could not be dated (sorted).
	Undated []string
	// Empty lists the queries that returned no row for the device.
	Empty []string
	// Collected are the outputs of successful collections: what to keep as last known.
	Collected []Value
	// Unfinished is true when an output's latest collection has not produced its
	// value: a last known value (Input.Known) would stand in for it.
	Unfinished bool
}

// Value is one output of a successful collection.
type Value struct {
	Field string
	Value any
	At    time.Time
}

// Merge merges and dates the answers. A later query's value of a field wins, with its
// time.
func Merge(in Input) Result {
	r := Result{Fields: map[string]any{}, Times: map[string]events.FieldTime{}}
	var dev *time.Time // the resolved device's last_seen, in UTC
	if in.LastSeen != nil {
		dev = utc(*in.LastSeen)
	}
	latest := dev
	for _, a := range in.Answers {
		if len(a.Rows) == 0 {
			r.Empty = append(r.Empty, a.Query.ID)
			continue
		}
		row := a.Rows[0]
		seen := dev
		if t, ok := nexthink.ParseTime(row[topic.LastSeenField]); ok {
			seen = &t
		}
		for h, v := range row {
			r.Fields[h] = v
			d, dated := a.Query.Dating[h]
			switch {
			case !dated: // a column describing an execution (its status, details or time) dates nothing
			case d.Collection == "":
				r.Times[h] = events.FieldTime{AsOf: seen, From: topic.LastSeenField}
			default:
				r.output(h, v, d, row, in.Known)
			}
		}
	}
	undated := map[string]bool{}
	for h, ft := range r.Times {
		switch {
		case ft.AsOf == nil:
			if r.Fields[h] != nil {
				undated[h] = true
			}
			continue
		case r.Fields[h] == nil:
			// No data: nothing to date, and nothing older than the rest.
		case r.DataAsOf == nil || ft.AsOf.Before(*r.DataAsOf):
			r.DataAsOf = utc(*ft.AsOf)
		}
		if latest == nil || ft.AsOf.After(*latest) {
			latest = ft.AsOf
		}
	}
	if latest != nil {
		r.LastSeen = utc(*latest)
	}
	for h := range undated {
		r.Undated = append(r.Undated, h)
	}
	slices.Sort(r.Undated)
	slices.SortFunc(r.Collected, func(a, b Value) int { return strings.Compare(a.Field, b.Field) })
	r.Stale = r.DataAsOf != nil && in.Now.Sub(*r.DataAsOf) > in.MaxAge
	return r
}

// output dates output h of value v, read from row with dating d: by its execution's
// time when that execution succeeded, else by the last known value that stands in.
func (r *Result) output(h string, v any, d topic.Dating, row map[string]any, known map[string]Known) {
	status, _ := row[d.Status].(string)
	at, ok := nexthink.ParseTime(row[d.Time])
	if status == events.StatusSuccess && ok {
		r.Times[h] = events.FieldTime{AsOf: &at, From: d.Time}
		if v != nil {
			r.Collected = append(r.Collected, Value{Field: h, Value: v, At: at})
		}
		return
	}
	// The latest collection has not produced this value (or says nothing of it).
	r.Unfinished = true
	ft := events.FieldTime{From: d.Time, LatestStatus: status}
	k, kept := known[h]
	switch {
	case kept && v == nil:
		r.Fields[h] = k.Value
		ft.AsOf, ft.LastKnown = utc(k.At), true
	case kept && equalJSON(k.Value, v):
		// The tenant still shows the earlier value: dexbridge knows when it was collected.
		ft.AsOf = utc(k.At)
	}
	r.Times[h] = ft
}

func utc(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// equalJSON reports whether a and b are the same JSON value, whatever Go types
// decoding gave them (a kept number is a float64, the tenant's may be an int64).
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var va, vb any
	if json.Unmarshal(ja, &va) != nil || json.Unmarshal(jb, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
