package nql

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"
)

// RunOptions are the settings of one Run.
type RunOptions struct {
	// Now is the end of relative timeframes; zero means time.Now().
	Now time.Time
	// MaxRows caps the rows returned; 0 means unlimited.
	MaxRows int
}

// ParamError reports a parameter that is missing or cannot be converted to the type
// of the field it is compared with: the caller's fault, not the Source's.
type ParamError struct {
	Name string // without `$`
	Msg  string
}

func (e *ParamError) Error() string { return "parameter $" + e.Name + ": " + e.Msg }

// stopScan ends a scan early without error (limit reached, join match found). A type,
// not a variable, so the package holds no state.
type stopScan struct{}

func (stopScan) Error() string { return "nql: scan stopped" }

// ctxEvery is how many rows pass between checks of the context.
const ctxEvery = 256

// Run evaluates the plan over src. It returns ctx's error if ctx ends during the run,
// a *ParamError for a missing or unconvertible parameter, or the Source's error.
func (p *Plan) Run(ctx context.Context, src Source, params map[string]string, opts RunOptions) (*Result, error) {
	rows := [][]Value{}
	err := p.Stream(ctx, src, params, opts, func(row []Value) error {
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Result{Headers: slices.Clone(p.headers), Rows: rows}, nil
}

// Headers are the output columns, as in Result.Headers.
func (p *Plan) Headers() []string { return slices.Clone(p.headers) }

// Stream is Run that hands each row to fn as soon as it is produced, so a query over
// a whole fleet needs no memory for its result. A query that sorts still holds its
// rows until the scan ends. fn may keep the row; an error from fn stops the run and
// Stream returns it.
func (p *Plan) Stream(ctx context.Context, src Source, params map[string]string, opts RunOptions, fn func([]Value) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pv, err := p.bindParams(params)
	if err != nil {
		return err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	r := &runner{
		ctx: ctx, p: p, src: src, sink: fn,
		env:   env{params: pv, comp: make([]Value, p.nComp), aggv: make([]Value, p.nAggs)},
		aggs:  make([]aggState, p.nAggs),
		limit: p.limit,
	}
	if opts.MaxRows > 0 && (r.limit < 0 || opts.MaxRows < r.limit) {
		r.limit = opts.MaxRows
	}
	if p.window > 0 {
		r.window = Window{From: now.Add(-p.window), To: now}
	}
	r.joinWins = make([]Window, len(p.joins))
	for k, j := range p.joins {
		if j.window > 0 {
			r.joinWins[k] = Window{From: now.Add(-j.window), To: now}
		}
	}
	r.relatedFn = r.related
	if p.summary != nil {
		r.groups = map[[maxBy]Value]int{}
	}
	if r.limit == 0 {
		return nil
	}
	if err := r.scan(); err != nil && !errors.Is(err, stopScan{}) {
		return err
	}
	if p.summary != nil {
		if err := r.finishGroups(); err != nil && !errors.Is(err, stopScan{}) {
			return err
		}
	}
	if p.sortKey != nil {
		r.sortRows()
		if r.limit >= 0 && len(r.rows) > r.limit {
			r.rows = r.rows[:r.limit]
		}
		for _, row := range r.rows {
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Plan) bindParams(params map[string]string) ([]Value, error) {
	if len(p.params) == 0 {
		return nil, nil
	}
	vals := make([]Value, len(p.params))
	for k, u := range p.params {
		s, ok := params[u.name]
		if !ok {
			return nil, &ParamError{Name: u.name, Msg: "missing"}
		}
		v, ok := convertString(s, u.typ)
		if !ok {
			msg := "cannot convert " + strconv.Quote(s) + " to " + typeNoun(u.typ)
			if u.field != "" {
				msg += " to compare with " + u.field
			}
			return nil, &ParamError{Name: u.name, Msg: msg}
		}
		vals[k] = v
	}
	return vals, nil
}

type runner struct {
	ctx   context.Context
	p     *Plan
	src   Source
	env   env
	aggs  []aggState
	limit int
	n     int // rows seen, for context checks

	window   Window
	joinWins []Window

	curJoin   *joinPlan
	matched   int
	relatedFn func(Row) error

	groups    map[[maxBy]Value]int
	groupList []*group

	rows    [][]Value // held only when the query sorts
	sink    func([]Value) error
	emitted int
}

type group struct {
	by   []Value
	aggs []aggState
}

func (r *runner) tick() error {
	r.n++
	if r.n%ctxEvery == 0 {
		return r.ctx.Err()
	}
	return nil
}

func (r *runner) scan() error {
	p := r.p
	if ix := p.index; ix != nil {
		values := make([]string, len(ix.items))
		for k, it := range ix.items {
			if it.param < 0 {
				values[k] = it.lit
			} else {
				values[k], _ = toText(r.env.params[it.param])
			}
		}
		var (
			rows []Row
			ok   bool
		)
		if ix.via == "" {
			if indexer, is := r.src.(Indexer); is {
				rows, ok = indexer.Lookup(r.ctx, p.primary.Name, ix.field, values)
			}
		} else if indexer, is := r.src.(RelatedIndexer); is {
			rows, ok = indexer.LookupRelated(r.ctx, p.primary.Name, ix.via, ix.field, values)
		}
		if ok {
			for _, row := range rows {
				if err := r.primaryRow(row); err != nil {
					return err
				}
			}
			return r.ctx.Err()
		}
	}
	return r.src.Scan(r.ctx, p.primary.Name, r.window, r.primaryRow)
}

// inWindow reports whether row's time field lies in w (From inclusive, To exclusive).
func inWindow(row Row, field string, w Window) bool {
	t, ok := asTime(norm(row.Value(field)))
	return ok && !t.Before(w.From) && t.Before(w.To)
}

func (r *runner) primaryRow(row Row) error {
	if err := r.tick(); err != nil {
		return err
	}
	p := r.p
	if p.window > 0 && !inWindow(row, p.primary.TimeField, r.window) {
		return nil
	}
	e := &r.env
	e.prim = row
	for k := range p.ops {
		o := &p.ops[k]
		switch o.kind {
		case opFilter:
			if !o.pred(e) {
				return nil
			}
		case opCompute:
			e.comp[o.slot] = o.val(e)
		case opJoin:
			ok, err := r.join(o.join)
			if err != nil || !ok {
				return err
			}
		}
	}
	if p.summary != nil {
		r.addToGroup()
		return nil
	}
	return r.emit()
}

// emit projects the current row; without sort it stops the scan at the limit.
func (r *runner) emit() error {
	p := r.p
	n := len(p.cols)
	extra := 0
	if p.sortKey != nil {
		extra = 1
	}
	out := make([]Value, n+extra)
	for k, fn := range p.cols {
		out[k] = fn(&r.env)
	}
	if extra == 1 {
		// The sort key rides in the row's spare capacity, invisible to callers.
		out[n] = p.sortKey(&r.env)
		out = out[:n]
	}
	if p.sortKey != nil {
		r.rows = append(r.rows, out)
		return nil
	}
	if err := r.sink(out); err != nil {
		return err
	}
	r.emitted++
	if r.limit >= 0 && r.emitted >= r.limit {
		return stopScan{}
	}
	return nil
}

func (r *runner) join(j *joinPlan) (bool, error) {
	for k := range j.aggs {
		r.aggs[j.aggs[k].slot] = aggState{}
	}
	r.curJoin, r.matched = j, 0
	err := r.src.Related(r.ctx, r.env.prim, j.table.Name, r.joinWins[j.idx], r.relatedFn)
	r.env.joined = nil
	if err != nil && !errors.Is(err, stopScan{}) {
		return false, err
	}
	if !j.include && r.matched == 0 {
		return false, nil
	}
	for k := range j.aggs {
		a := &j.aggs[k]
		r.env.aggv[a.slot] = r.aggs[a.slot].result(a.fn)
	}
	for _, c := range j.computes {
		r.env.comp[c.slot] = c.val(&r.env)
	}
	return true, nil
}

func (r *runner) related(row Row) error {
	if err := r.tick(); err != nil {
		return err
	}
	j := r.curJoin
	if j.window > 0 && !inWindow(row, j.table.TimeField, r.joinWins[j.idx]) {
		return nil
	}
	e := &r.env
	e.joined = row
	for _, f := range j.filters {
		if !f(e) {
			return nil
		}
	}
	r.matched++
	if len(j.aggs) == 0 {
		return stopScan{} // existence is all a with without compute needs
	}
	for k := range j.aggs {
		a := &j.aggs[k]
		r.aggs[a.slot].add(a, e, row)
	}
	return nil
}

func (r *runner) addToGroup() {
	sp := r.p.summary
	var key [maxBy]Value
	for k, fn := range sp.by {
		v := fn(&r.env)
		if t, ok := v.(time.Time); ok {
			v = t.UTC() // one key per instant whatever the location
		}
		key[k] = v
	}
	gi, ok := r.groups[key]
	if !ok {
		gi = len(r.groupList)
		r.groups[key] = gi
		r.groupList = append(r.groupList, &group{
			by:   slices.Clone(key[:len(sp.by)]),
			aggs: make([]aggState, len(sp.aggs)),
		})
	}
	g := r.groupList[gi]
	for k := range sp.aggs {
		g.aggs[k].add(&sp.aggs[k], &r.env, r.env.prim)
	}
}

func (r *runner) finishGroups() error {
	p := r.p
	sp := p.summary
	e := &r.env
	e.prim, e.joined = nil, nil
	for _, g := range r.groupList {
		if err := r.tick(); err != nil {
			return err
		}
		row := make([]Value, p.nPost)
		copy(row, g.by)
		for k := range sp.aggs {
			e.aggv[sp.aggs[k].slot] = g.aggs[k].result(sp.aggs[k].fn)
		}
		e.comp = row
		for _, it := range sp.items {
			row[it.slot] = it.val(e)
		}
		keep := true
		for k := range p.post {
			o := &p.post[k]
			if o.kind == opFilter {
				if !o.pred(e) {
					keep = false
					break
				}
			} else {
				row[o.slot] = o.val(e)
			}
		}
		if !keep {
			continue
		}
		if err := r.emit(); err != nil {
			return err
		}
	}
	return nil
}

// sortRows sorts by the hidden key stored after each row's columns. Nulls go last
// whatever the direction; values that do not compare order by type.
func (r *runner) sortRows() {
	n := len(r.p.cols)
	desc := r.p.sortDesc
	slices.SortStableFunc(r.rows, func(a, b []Value) int {
		ka, kb := a[:n+1][n], b[:n+1][n]
		switch {
		case ka == nil && kb == nil:
			return 0
		case ka == nil:
			return 1
		case kb == nil:
			return -1
		}
		c, ok := compare(ka, kb)
		if !ok {
			c = typeRank(ka) - typeRank(kb)
		}
		if desc {
			return -c
		}
		return c
	})
}

func typeRank(v Value) int {
	switch v.(type) {
	case bool:
		return 0
	case int64, float64:
		return 1
	case string:
		return 2
	case time.Time:
		return 3
	}
	return 4
}

// aggState accumulates one aggregate without allocating.
type aggState struct {
	n      int64
	isum   int64
	fsum   float64
	float  bool
	best   Value
	bestT  time.Time
	timed  bool // best came from a row with a time
	hasAny bool
}

func (s *aggState) add(a *aggPlan, e *env, row Row) {
	if a.arg == nil { // count()
		s.n++
		return
	}
	v := a.arg(e)
	if v == nil {
		return
	}
	switch a.fn {
	case aggCount:
		s.n++
	case aggSum, aggAvg:
		i, f, isInt, ok := toNumber(v)
		if !ok {
			return
		}
		s.n++
		if isInt {
			s.isum += i
		} else {
			s.fsum += f
			s.float = true
		}
	case aggMax, aggMin:
		if !s.hasAny {
			s.best, s.hasAny = v, true
			return
		}
		c, ok := compare(v, s.best)
		if ok && (a.fn == aggMax && c > 0 || a.fn == aggMin && c < 0) {
			s.best = v
		}
	case aggLast:
		var t time.Time
		timed := false
		if a.timeField != "" && row != nil {
			t, timed = asTime(norm(row.Value(a.timeField)))
		}
		// The latest time wins, ties to the later row; rows without a time only win
		// over other rows without one.
		if !s.hasAny || timed && (!s.timed || !t.Before(s.bestT)) || !timed && !s.timed {
			s.best, s.bestT, s.timed, s.hasAny = v, t, timed, true
		}
	}
}

func (s *aggState) result(fn aggFunc) Value {
	switch fn {
	case aggCount:
		return s.n
	case aggSum:
		if s.n == 0 {
			return nil
		}
		if s.float {
			return s.fsum + float64(s.isum)
		}
		return s.isum
	case aggAvg:
		if s.n == 0 {
			return nil
		}
		return (s.fsum + float64(s.isum)) / float64(s.n)
	}
	return s.best
}
