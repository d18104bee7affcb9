package nxql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Source is the data a query runs over; table and field names are the source's
// (fleet) names that the schema maps NXQL names to.
type Source interface {
	// Scan calls fn for each row of a table whose time field is in [from, to)
	// (zero bounds are open; object tables ignore them).
	Scan(ctx context.Context, table string, from, to time.Time, fn func(Row) error) error
	// Related calls fn for each event row linked to obj, a row Scan returned.
	Related(ctx context.Context, obj Row, table string, from, to time.Time, fn func(Row) error) error
}

// Indexer is an optional interface of a Source: queries whose first where
// clause picks objects by equality on an indexed field look them up instead of
// scanning every object.
type Indexer interface {
	Lookup(ctx context.Context, table, field string, values []string) ([]Row, bool)
}

// RunOptions are the settings of one run.
type RunOptions struct {
	// Now is the end of relative datetimes (now-7d); zero means time.Now().
	Now time.Time
	// Platforms are the platform tokens the query targets (windows, mac_os,
	// mobile); rows of devices of other platforms are left out. Empty means all.
	Platforms []string
	// MaxRows caps the rows returned; 0 means no cap.
	MaxRows int
}

// Result is the outcome of a run: column names in select order and the rows'
// values (string, int64, float64, bool, time.Time or nil).
type Result struct {
	Columns []string
	Rows    [][]any
}

// Columns returns the output column names.
func (q *Query) Columns() []string {
	out := make([]string, len(q.columns))
	for k, c := range q.columns {
		out[k] = c.name
	}
	return out
}

// errStop ends a scan early without error.
type errStop struct{}

func (errStop) Error() string { return "nxql: scan stopped" }

const ctxEvery = 256

// Run evaluates the query over src.
func (q *Query) Run(ctx context.Context, src Source, opts RunOptions) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &run{ctx: ctx, q: q, src: src, now: now.UTC().Truncate(time.Second), limit: q.limit}
	if opts.MaxRows > 0 && (r.limit < 0 || opts.MaxRows < r.limit) {
		r.limit = opts.MaxRows
	}
	if len(opts.Platforms) > 0 {
		r.platforms = map[string]bool{}
		for _, p := range opts.Platforms {
			r.platforms[p] = true
		}
	}
	res := &Result{Columns: q.Columns(), Rows: [][]any{}}
	if r.limit == 0 {
		return res, nil
	}
	var err error
	switch q.mode {
	case modeEvents:
		err = r.events()
	default:
		err = r.objects()
	}
	if err != nil && !errors.Is(err, errStop{}) {
		return nil, err
	}
	if q.order != nil {
		k := len(q.columns) // the sort key rides after the columns
		slices.SortStableFunc(r.rows, func(a, b []any) int {
			c := compareValues(a[k], b[k])
			if q.order.desc && a[k] != nil && b[k] != nil {
				c = -c
			}
			return c
		})
		if r.limit >= 0 && len(r.rows) > r.limit {
			r.rows = r.rows[:r.limit]
		}
		for i := range r.rows {
			r.rows[i] = r.rows[i][:k]
		}
	}
	res.Rows = append(res.Rows, r.rows...)
	return res, nil
}

type run struct {
	ctx       context.Context
	q         *Query
	src       Source
	now       time.Time
	limit     int
	platforms map[string]bool
	rows      [][]any
	n         int
}

func (r *run) tick() error {
	r.n++
	if r.n%ctxEvery == 0 {
		return r.ctx.Err()
	}
	return nil
}

// platformOK reports whether a row of table t belongs to a targeted platform.
func (r *run) platformOK(t *Table, row Row) bool {
	if r.platforms == nil || t.Platform == "" {
		return true
	}
	p, _ := normValue(row.Value(t.Platform)).(string)
	return r.platforms[platformEnum[p]]
}

// emit adds one output row; it stops the scan once the limit is reached (when
// rows are not sorted first).
func (r *run) emit(row []any) error {
	r.rows = append(r.rows, row)
	if r.q.order == nil && r.limit >= 0 && len(r.rows) >= r.limit {
		return errStop{}
	}
	return nil
}

func (r *run) window(b *between) (time.Time, time.Time) {
	if b == nil {
		return time.Time{}, time.Time{}
	}
	return b.from.at(r.now), b.to.at(r.now)
}

func inWindow(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// value reads field f of row.
func (r *run) value(row Row, f *Field) any {
	v := normValue(row.Value(f.Source))
	if s, ok := v.(string); ok && f.Enum != nil {
		if tok, ok := f.Enum[s]; ok {
			return tok
		}
		return strings.ToLower(s)
	}
	return v
}

func (r *run) whereOK(w *where, row Row) bool {
	for k := range w.filters {
		if r.filterOK(&w.filters[k], row) {
			return true
		}
	}
	return false
}

func (r *run) filterOK(f *filter, row Row) bool {
	switch f.op {
	case "and":
		for k := range f.subs {
			if !r.filterOK(&f.subs[k], row) {
				return false
			}
		}
		return true
	case "or":
		for k := range f.subs {
			if r.filterOK(&f.subs[k], row) {
				return true
			}
		}
		return false
	case "not":
		return !r.filterOK(&f.subs[0], row)
	}
	v := r.value(row, f.field)
	if f.value.typ == TypePattern {
		if v == nil {
			return f.op == "ne"
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(FormatValue(v))
		}
		return match(f.value.str, s) == (f.op == "eq")
	}
	c, ok := compareLiteral(v, &f.value, r.now)
	if !ok {
		return f.op == "ne"
	}
	switch f.op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	}
	return c <= 0
}

// events runs (from event ...) and (from (event object...) ...).
func (r *run) events() error {
	q := r.q
	from, to := r.window(q.window)
	return r.src.Scan(r.ctx, q.from.Source, from, to, func(row Row) error {
		if err := r.tick(); err != nil {
			return err
		}
		if !r.platformOK(q.from, row) {
			return nil
		}
		if q.from.TimeField != "" && q.window != nil {
			t, ok := asTime(normValue(row.Value(q.from.TimeField)))
			if !ok || !inWindow(t, from, to) {
				return nil
			}
		}
		for k := range q.wheres {
			if !r.whereOK(&q.wheres[k], row) {
				return nil
			}
		}
		return r.emit(r.project(row, nil, nil))
	})
}

// project builds an output row; row answers the fields, aggs the aggregates.
func (r *run) project(row Row, second Row, aggs [][]aggState) []any {
	q := r.q
	n := len(q.columns)
	if q.order != nil {
		n++
	}
	out := make([]any, n)
	get := func(c *column) any {
		if c.agg != nil {
			return aggs[c.agg.with][aggIndex(q.withs[c.agg.with].computes, c.agg.agg)].result(c.agg.agg)
		}
		if second != nil && c.table == q.second {
			return r.value(second, c.field)
		}
		return r.value(row, c.field)
	}
	for k := range q.columns {
		out[k] = get(&q.columns[k])
	}
	if q.order != nil {
		out[len(q.columns)] = get(&q.order.col)
	}
	return out
}

func aggIndex(list []*Aggregate, a *Aggregate) int {
	for k, x := range list {
		if x == a {
			return k
		}
	}
	return 0
}

// candidates returns the from table's rows: looked up by index when the first
// where clause is equalities on an indexed field, else scanned.
func (r *run) candidates(fn func(Row) error) error {
	q := r.q
	if ix, ok := r.src.(Indexer); ok && len(q.wheres) > 0 && q.wheres[0].table == q.from {
		w := q.wheres[0]
		var field string
		var values []string
		for _, f := range w.filters {
			if f.op != "eq" || f.field == nil || f.value.typ != TypeString ||
				(field != "" && field != f.field.Source) {
				values = nil
				break
			}
			field = f.field.Source
			values = append(values, f.value.str)
		}
		if values != nil {
			if rows, ok := ix.Lookup(r.ctx, q.from.Source, field, values); ok {
				for _, row := range rows {
					if err := fn(row); err != nil {
						return err
					}
				}
				return nil
			}
		}
	}
	return r.src.Scan(r.ctx, q.from.Source, time.Time{}, time.Time{}, fn)
}

// objects runs (from object ...) and (from (object object) (with event ...)).
func (r *run) objects() error {
	q := r.q
	return r.candidates(func(obj Row) error {
		if err := r.tick(); err != nil {
			return err
		}
		if !r.platformOK(q.from, obj) {
			return nil
		}
		for k := range q.wheres {
			if q.wheres[k].table == q.from && !r.whereOK(&q.wheres[k], obj) {
				return nil
			}
		}
		if q.mode == modePairs {
			return r.pairs(obj)
		}
		aggs := make([][]aggState, len(q.withs))
		for k := range q.withs {
			w := &q.withs[k]
			aggs[k] = make([]aggState, len(w.computes))
			matched := 0
			from, to := r.window(w.window)
			err := r.src.Related(r.ctx, obj, w.event.Source, from, to, func(ev Row) error {
				if !r.eventOK(w, ev, from, to) {
					return nil
				}
				matched++
				for j, a := range w.computes {
					aggs[k][j].add(a, ev)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if matched == 0 {
				return nil // objects with activity only
			}
		}
		return r.emit(r.project(obj, nil, aggs))
	})
}

func (r *run) eventOK(w *with, ev Row, from, to time.Time) bool {
	if w.event.TimeField != "" && w.window != nil {
		t, ok := asTime(normValue(ev.Value(w.event.TimeField)))
		if !ok || !inWindow(t, from, to) {
			return false
		}
	}
	for k := range w.wheres {
		if !r.whereOK(&w.wheres[k], ev) {
			return false
		}
	}
	return true
}

// pairs emits one row per (object, second object) linked by the with's events.
func (r *run) pairs(obj Row) error {
	q := r.q
	w := &q.withs[0]
	type pair struct {
		ev   Row
		aggs []aggState
	}
	groups := map[string]*pair{}
	var order []string
	from, to := r.window(w.window)
	err := r.src.Related(r.ctx, obj, w.event.Source, from, to, func(ev Row) error {
		if !r.eventOK(w, ev, from, to) {
			return nil
		}
		for k := range q.wheres {
			if q.wheres[k].table != q.from && !r.whereOK(&q.wheres[k], ev) {
				return nil
			}
		}
		key := r.objectKey(q.second, ev)
		p := groups[key]
		if p == nil {
			p = &pair{ev: ev, aggs: make([]aggState, len(w.computes))}
			groups[key] = p
			order = append(order, key)
		}
		for j, a := range w.computes {
			p.aggs[j].add(a, ev)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range order {
		p := groups[key]
		if err := r.emit(r.project(obj, p.ev, [][]aggState{p.aggs})); err != nil {
			return err
		}
	}
	return nil
}

// objectKey identifies the object of table t an event row links.
func (r *run) objectKey(t *Table, ev Row) string {
	if len(t.Key) == 1 {
		if s, ok := ev.Value(t.Key[0]).(string); ok {
			return s
		}
	}
	var b strings.Builder
	for _, f := range t.Key {
		b.WriteString(fmt.Sprint(ev.Value(f)))
		b.WriteByte(0)
	}
	return b.String()
}

// aggState accumulates one aggregate.
type aggState struct {
	n     int64
	isum  int64
	fsum  float64
	float bool
	best  any
}

func (s *aggState) add(a *Aggregate, ev Row) {
	if a.Field == "" {
		s.n++
		return
	}
	v := normValue(ev.Value(a.Field))
	if v == nil {
		return
	}
	switch a.Func {
	case "count":
		s.n++
	case "sum", "avg":
		switch x := v.(type) {
		case int64:
			s.isum += x
		case float64:
			s.fsum += x
			s.float = true
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return
			}
			s.fsum += f
			s.float = true
		default:
			return
		}
		s.n++
	case "max":
		if s.best == nil || compareValues(v, s.best) > 0 {
			s.best = v
		}
	}
}

func (s *aggState) result(a *Aggregate) any {
	switch a.Func {
	case "count":
		return s.n
	case "sum":
		if s.n == 0 {
			return nil
		}
		if s.float {
			return s.fsum + float64(s.isum)
		}
		return s.isum
	case "avg":
		if s.n == 0 {
			return nil
		}
		return (s.fsum + float64(s.isum)) / float64(s.n)
	}
	return s.best
}
