package nql

import "time"

// maxBy bounds the `by` fields of a summarize: group keys are fixed-size arrays, so
// grouping allocates nothing per row.
const maxBy = 8

// Plan is a compiled query: names are resolved to the canonical strings the Source
// receives, literals converted and wildcard patterns compiled. A Plan is immutable
// and safe to Run concurrently.
type Plan struct {
	primary *Table
	window  time.Duration // timeframe of the primary table, 0 for none

	ops   []op // per primary row, in query order
	nComp int  // computed slots of a primary row
	nAggs int  // aggregate slots (joins and summarize)
	joins []*joinPlan

	summary *summaryPlan // nil without summarize
	post    []op         // after summarize, over summary rows
	nPost   int          // slots of a summary row

	cols     []valueFn
	headers  []string
	types    []FieldType // of each header
	sortKey  valueFn     // nil without sort
	sortDesc bool
	limit    int // -1 without limit

	params []paramUse
	index  *indexPlan

	analysis Analysis
}

// env is what an expression reads: the primary row, the joined row being filtered or
// aggregated, computed values, bound parameters and finished aggregates.
type env struct {
	prim   Row
	joined Row
	comp   []Value
	params []Value
	aggv   []Value
}

type (
	valueFn func(*env) Value
	predFn  func(*env) bool
)

type opKind uint8

const (
	opFilter opKind = iota
	opCompute
	opJoin
)

type op struct {
	kind opKind
	pred predFn
	slot int
	val  valueFn
	join *joinPlan
}

type joinPlan struct {
	idx      int
	table    *Table
	window   time.Duration
	include  bool
	filters  []predFn
	aggs     []aggPlan
	computes []slotExpr
}

type slotExpr struct {
	slot int
	val  valueFn
}

type aggFunc uint8

const (
	aggCount aggFunc = iota
	aggSum
	aggAvg
	aggMax
	aggMin
	aggLast
)

// aggByName maps an aggregate method name to its function.
func aggByName(name string) (aggFunc, bool) {
	switch name {
	case "count":
		return aggCount, true
	case "sum":
		return aggSum, true
	case "avg":
		return aggAvg, true
	case "max":
		return aggMax, true
	case "min":
		return aggMin, true
	case "last":
		return aggLast, true
	}
	return 0, false
}

type aggPlan struct {
	fn        aggFunc
	slot      int
	arg       valueFn // nil for count()
	timeField string  // for last(): the time field of the aggregated rows
}

type summaryPlan struct {
	by    []valueFn
	aggs  []aggPlan
	items []slotExpr // slots after the by fields
}

type paramUse struct {
	name  string
	typ   FieldType
	field string // what it is compared with, for error messages
}

type indexPlan struct {
	via   string // the with table whose field it is; "" for the primary table's
	field string
	items []indexItem
}

type indexItem struct {
	lit   string
	param int // slot, or -1 for a literal
}

type compSlot struct {
	slot int
	typ  FieldType
}

type compiler struct {
	s       *Schema
	p       *Plan
	primary *Table
	join    *joinPlan // the open join: its wheres and compute are still being read

	comp       map[string]compSlot // computed names before summarize
	summarized bool
	post       map[string]compSlot // names of a summary row
	postByName map[string]int      // canonical by-field names -> slot

	paramSlot map[*Param]int
	fieldSeen map[string]bool
	sawWhere  bool // the first primary where has been seen (index candidate)
	sumBy     []*FieldRef
	sumItems  []Assign
	list      *ListClause
	sort      *SortClause
	limitSeen bool
}

// scope says what an expression may read.
type scope struct {
	joined     bool  // bare fields of the open join (a where right after with/include)
	usedJoined *bool // set when such a field is read
	aggs       *[]aggPlan
	aggJoined  bool   // aggregate arguments read joined rows
	aggTable   *Table // whose time field last() uses
	inAgg      bool
	noBare     bool // summarize: fields only inside aggregates
}

// Compile parses src and resolves every name against s (DefaultSchema when nil).
// Errors are *Error with the position of the offending name.
//
// Semantics, with our choices where Nexthink is silent:
//   - A short name resolves against the open join's table first (its own fields and
//     the objects it links other than the primary's), then the primary table, after
//     computed names. A where reading any joined field filters joined rows; other
//     wheres filter primary objects, even between a join and its compute.
//   - A join closes at the next compute (which aggregates its surviving rows), with,
//     include, summarize or the end. `with` drops objects without a surviving row.
//   - list, sort and limit apply at the end whatever their position: sort, then
//     limit. Only one of each, and one summarize, is allowed.
//   - No timeframe means no time filter (Nexthink defaults event tables to a recent
//     window; saved queries here always state theirs). Tables without a time field
//     refuse a timeframe.
//   - `*` in a string literal is a wildcard for ==, != and in; in a parameter it is
//     a plain character, so user input cannot match every device.
//   - `!` binds looser than comparisons: `!a == b` is `!(a == b)`.
func Compile(src string, s *Schema) (*Plan, error) {
	q, err := Parse(src)
	if err != nil {
		return nil, err
	}
	if s == nil {
		s = DefaultSchema()
	}
	return compileQuery(q, s)
}

func compileQuery(q *Query, s *Schema) (*Plan, error) {
	t, ok := s.Table(q.Table)
	if !ok {
		return nil, q.TablePos.errorf("unknown table %q", q.Table)
	}
	c := &compiler{
		s: s, primary: t,
		p:         &Plan{primary: t, limit: -1},
		comp:      map[string]compSlot{},
		paramSlot: map[*Param]int{},
		fieldSeen: map[string]bool{},
	}
	c.p.analysis.Table = t.Name
	c.p.analysis.Parameters = paramOrder(q)
	if q.Timeframe != nil {
		if t.TimeField == "" {
			return nil, q.Timeframe.Pos.errorf("table %s has no time field to apply a timeframe to", t.Name)
		}
		c.p.window = q.Timeframe.Duration
		c.addField(t.TimeField)
	}
	for _, cl := range q.Clauses {
		if err := c.clause(cl); err != nil {
			return nil, err
		}
	}
	c.closeJoin()
	if err := c.finish(); err != nil {
		return nil, err
	}
	c.analyse(q)
	return c.p, nil
}

func (c *compiler) clause(cl Clause) error {
	switch cl := cl.(type) {
	case *JoinClause:
		return c.joinClause(cl)
	case *WhereClause:
		return c.where(cl)
	case *ComputeClause:
		return c.compute(cl)
	case *SummarizeClause:
		return c.summarize(cl)
	case *ListClause:
		if c.list != nil {
			return cl.Pos.errorf("only one list clause is allowed")
		}
		c.list = cl
	case *SortClause:
		if c.sort != nil {
			return cl.Pos.errorf("only one sort clause is allowed")
		}
		c.sort = cl
	case *LimitClause:
		if c.limitSeen {
			return cl.Pos.errorf("only one limit clause is allowed")
		}
		c.limitSeen = true
		c.p.limit = cl.N
	}
	return nil
}

func (c *compiler) joinClause(cl *JoinClause) error {
	if c.summarized {
		return cl.Pos.errorf("%s after summarize is not supported", joinWord(cl))
	}
	c.closeJoin()
	t, ok := c.s.Table(cl.Table)
	if !ok {
		return cl.TablePos.errorf("unknown table %q", cl.Table)
	}
	if c.primary.Kind != KindObject {
		return cl.Pos.errorf("%s needs an object table (devices, users) first, not %s", joinWord(cl), c.primary.Name)
	}
	if t.Kind == KindObject {
		return cl.TablePos.errorf("cannot %s the object table %s; join event or inventory tables", joinWord(cl), t.Name)
	}
	if !contains(t.Links, c.primary.Object) {
		return cl.TablePos.errorf("table %s is not linked to %s", t.Name, c.primary.Name)
	}
	j := &joinPlan{idx: len(c.p.joins), table: t, include: cl.Include}
	if cl.Timeframe != nil {
		if t.TimeField == "" {
			return cl.Timeframe.Pos.errorf("table %s has no time field to apply a timeframe to", t.Name)
		}
		j.window = cl.Timeframe.Duration
		c.addField(t.TimeField)
	}
	c.p.joins = append(c.p.joins, j)
	c.p.analysis.Joins = append(c.p.analysis.Joins, t.Name)
	c.join = j
	return nil
}

func (j *joinPlan) word() string {
	if j.include {
		return "include"
	}
	return "with"
}

func joinWord(cl *JoinClause) string {
	if cl.Include {
		return "include"
	}
	return "with"
}

// closeJoin ends the open join: its op runs after the primary filters written
// between the join and here, which commute with it and are cheaper.
func (c *compiler) closeJoin() {
	if c.join == nil {
		return
	}
	j := c.join
	c.join = nil
	// An include that computes nothing cannot change the result: skip its rows.
	if j.include && len(j.aggs) == 0 && len(j.computes) == 0 {
		return
	}
	c.p.ops = append(c.p.ops, op{kind: opJoin, join: j})
}

func (c *compiler) where(cl *WhereClause) error {
	if c.summarized {
		pred, err := c.pred(cl.Cond, &scope{})
		if err != nil {
			return err
		}
		c.p.post = append(c.p.post, op{kind: opFilter, pred: pred})
		return nil
	}
	used := false
	sc := &scope{usedJoined: &used}
	if c.join != nil {
		sc.joined = true
	}
	pred, err := c.pred(cl.Cond, sc)
	if err != nil {
		return err
	}
	if used {
		// Rows without a match of a with are dropped, so the objects related to
		// the filtered rows are a superset of the answer: an index the scan may use.
		if c.p.index == nil && !c.join.include {
			c.p.index = c.indexFor(cl.Cond, c.join.table)
		}
		c.join.filters = append(c.join.filters, pred)
		return nil
	}
	if !c.sawWhere {
		c.sawWhere = true
		if ip := c.indexFor(cl.Cond, nil); ip != nil {
			c.p.index = ip
		}
	}
	c.p.ops = append(c.p.ops, op{kind: opFilter, pred: pred})
	return nil
}

func (c *compiler) compute(cl *ComputeClause) error {
	for _, it := range cl.Items {
		if c.isName(it.Name) {
			return it.Pos.errorf("%q is already defined", it.Name)
		}
		switch {
		case c.summarized:
			fn, typ, err := c.value(it.Expr, &scope{})
			if err != nil {
				return err
			}
			slot := c.p.nPost
			c.p.nPost++
			c.post[it.Name] = compSlot{slot, typ}
			c.p.post = append(c.p.post, op{kind: opCompute, slot: slot, val: fn})
		case c.join != nil:
			j := c.join
			fn, typ, err := c.value(it.Expr, &scope{aggs: &j.aggs, aggJoined: true, aggTable: j.table})
			if err != nil {
				return err
			}
			slot := c.newComp(it.Name, typ)
			j.computes = append(j.computes, slotExpr{slot, fn})
		default:
			fn, typ, err := c.value(it.Expr, &scope{})
			if err != nil {
				return err
			}
			slot := c.newComp(it.Name, typ)
			c.p.ops = append(c.p.ops, op{kind: opCompute, slot: slot, val: fn})
		}
	}
	c.closeJoin()
	return nil
}

func (c *compiler) isName(name string) bool {
	if c.summarized {
		_, ok := c.post[name]
		return ok
	}
	_, ok := c.comp[name]
	return ok
}

func (c *compiler) newComp(name string, typ FieldType) int {
	slot := c.p.nComp
	c.p.nComp++
	c.comp[name] = compSlot{slot, typ}
	return slot
}

func (c *compiler) summarize(cl *SummarizeClause) error {
	if c.summarized {
		return cl.Pos.errorf("only one summarize clause is allowed")
	}
	c.closeJoin()
	if len(cl.By) > maxBy {
		return cl.By[maxBy].Pos.errorf("at most %d by fields are supported", maxBy)
	}
	sp := &summaryPlan{}
	post := map[string]compSlot{}
	byName := map[string]int{}
	for k, f := range cl.By {
		fn, typ, canon, err := c.fieldRead(f, &scope{})
		if err != nil {
			return err
		}
		sp.by = append(sp.by, fn)
		if _, dup := byName[canon]; dup {
			return f.Pos.errorf("%s appears twice after by", f.Name)
		}
		byName[canon] = k
		if _, ok := c.comp[f.Name]; ok {
			post[f.Name] = compSlot{k, typ}
		}
	}
	slot := len(cl.By)
	for _, it := range cl.Items {
		if _, dup := post[it.Name]; dup {
			return it.Pos.errorf("%q is already defined", it.Name)
		}
		fn, typ, err := c.value(it.Expr, &scope{aggs: &sp.aggs, aggTable: c.primary, noBare: true})
		if err != nil {
			return err
		}
		sp.items = append(sp.items, slotExpr{slot, fn})
		post[it.Name] = compSlot{slot, typ}
		slot++
	}
	c.p.summary = sp
	c.p.nPost = slot
	c.post = post
	c.postByName = byName
	c.summarized = true
	c.sumBy = cl.By
	c.sumItems = cl.Items
	return nil
}

// finish resolves list and sort in the final scope and fixes the output columns.
func (c *compiler) finish() error {
	if c.list != nil {
		for _, f := range c.list.Fields {
			fn, typ, canon, err := c.fieldRead(f, &scope{})
			if err != nil {
				return err
			}
			c.addColumn(fn, canon, typ)
		}
	} else if c.summarized {
		for _, f := range c.sumBy {
			fn, typ, canon, err := c.fieldRead(f, &scope{})
			if err != nil {
				return err
			}
			c.addColumn(fn, canon, typ)
		}
		for _, it := range c.sumItems {
			cs := c.post[it.Name]
			c.addColumn(slotRead(cs.slot), it.Name, cs.typ)
		}
		c.appendComputed(c.post, len(c.sumBy)+len(c.sumItems))
	} else {
		for _, name := range c.primary.Defaults {
			r, _ := c.s.resolveIn(c.primary, name)
			c.addColumn(primRead(name), name, r.typ)
			c.addField(name)
		}
		c.appendComputed(c.comp, 0)
	}
	if c.sort != nil {
		fn, _, _, err := c.fieldRead(c.sort.Field, &scope{})
		if err != nil {
			return err
		}
		c.p.sortKey, c.p.sortDesc = fn, c.sort.Desc
	}
	c.p.analysis.Headers = c.p.headers
	c.p.analysis.Types = c.p.types
	c.p.analysis.Limit = c.p.limit
	return nil
}

// addColumn appends an output column.
func (c *compiler) addColumn(fn valueFn, header string, typ FieldType) {
	c.p.cols = append(c.p.cols, fn)
	c.p.headers = append(c.p.headers, header)
	c.p.types = append(c.p.types, typ)
}

// appendComputed adds computed names with slots from min on, in slot order.
func (c *compiler) appendComputed(names map[string]compSlot, min int) {
	n := 0
	for _, cs := range names {
		if cs.slot >= min {
			n++
		}
	}
	byslot := make([]string, n)
	for name, cs := range names {
		if cs.slot >= min {
			byslot[cs.slot-min] = name
		}
	}
	for k, name := range byslot {
		c.addColumn(slotRead(min+k), name, names[name].typ)
	}
}

// canonical is the output name of a written field: a computed name as written, a
// table field fully qualified.
func (c *compiler) canonical(name string) string {
	if _, ok := c.comp[name]; ok {
		return name
	}
	if r, ok := c.s.resolveIn(c.primary, name); ok {
		return r.name
	}
	return name
}

func (c *compiler) addField(name string) {
	if c.fieldSeen[name] {
		return
	}
	c.fieldSeen[name] = true
	c.p.analysis.Fields = append(c.p.analysis.Fields, name)
}

func slotRead(slot int) valueFn { return func(e *env) Value { return e.comp[slot] } }

func primRead(name string) valueFn {
	return func(e *env) Value { return norm(e.prim.Value(name)) }
}

func joinedRead(name string) valueFn {
	return func(e *env) Value { return norm(e.joined.Value(name)) }
}

// fieldRead resolves a written field in scope sc and returns its reader, type and
// output name.
func (c *compiler) fieldRead(f *FieldRef, sc *scope) (valueFn, FieldType, string, error) {
	if c.summarized {
		if cs, ok := c.post[f.Name]; ok {
			return slotRead(cs.slot), cs.typ, f.Name, nil
		}
		if r, ok := c.s.resolveIn(c.primary, f.Name); ok {
			if k, ok := c.postByName[r.name]; ok {
				return slotRead(k), r.typ, r.name, nil
			}
		}
		return nil, 0, "", f.Pos.errorf("%s is not a by field or a name of the summarize", f.Name)
	}
	bare := sc.noBare && !sc.inAgg
	if cs, ok := c.comp[f.Name]; ok {
		if bare {
			return nil, 0, "", f.Pos.errorf("%s must be inside an aggregate or after by", f.Name)
		}
		return slotRead(cs.slot), cs.typ, f.Name, nil
	}
	var jr resolved
	jok := false
	if c.join != nil {
		jr, jok = c.s.resolveIn(c.join.table, f.Name)
		jok = jok && jr.object != c.primary.Object
	}
	if jok && (sc.joined || sc.inAgg && sc.aggJoined) {
		if sc.usedJoined != nil {
			*sc.usedJoined = true
		}
		c.addField(jr.name)
		return joinedRead(jr.name), jr.typ, jr.name, nil
	}
	if r, ok := c.s.resolveIn(c.primary, f.Name); ok {
		if bare {
			return nil, 0, "", f.Pos.errorf("%s must be inside an aggregate or after by", f.Name)
		}
		c.addField(r.name)
		return primRead(r.name), r.typ, r.name, nil
	}
	if jok {
		return nil, 0, "", f.Pos.errorf("field %s of %s can only be read in a where right after the %s or inside an aggregate",
			f.Name, c.join.table.Name, c.join.word())
	}
	if c.join != nil {
		return nil, 0, "", f.Pos.errorf("unknown field %q in %s or %s", f.Name, c.primary.Name, c.join.table.Name)
	}
	return nil, 0, "", f.Pos.errorf("unknown field %q in %s", f.Name, c.primary.Name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// indexFor returns the index lookup a where allows: a conjunct `field == literal or
// $param` or `field in [...]` on a field of the primary table, or of the with table
// joined when not nil, without wildcards.
func (c *compiler) indexFor(e Expr, joined *Table) *indexPlan {
	for _, conj := range conjuncts(e, nil) {
		var f *FieldRef
		var items []Expr
		switch x := conj.(type) {
		case *Binary:
			if x.Op != "==" {
				continue
			}
			if fr, ok := x.L.(*FieldRef); ok {
				f, items = fr, []Expr{x.R}
			} else if fr, ok := x.R.(*FieldRef); ok {
				f, items = fr, []Expr{x.L}
			}
		case *In:
			if fr, ok := x.X.(*FieldRef); ok && !x.Not {
				f, items = fr, x.Items
			}
		}
		if f == nil || len(items) == 0 {
			continue
		}
		if _, ok := c.comp[f.Name]; ok {
			continue
		}
		var (
			r  resolved
			ok bool
			ip = &indexPlan{}
		)
		if joined != nil {
			r, ok = c.s.resolveIn(joined, f.Name)
			ok = ok && r.object != c.primary.Object // as fieldRead resolves it
			ip.via = joined.Name
		} else {
			r, ok = c.s.resolveIn(c.primary, f.Name)
		}
		if !ok {
			continue
		}
		ip.field = r.name
		for _, it := range items {
			switch v := it.(type) {
			case *Param:
				ip.items = append(ip.items, indexItem{param: c.paramSlot[v]})
			case *Literal:
				s, ok := toText(v.Value)
				if !ok || v.Value == nil || hasWildcard(s) {
					ip = nil
				} else {
					ip.items = append(ip.items, indexItem{lit: s, param: -1})
				}
			default:
				ip = nil
			}
			if ip == nil {
				break
			}
		}
		if ip != nil {
			return ip
		}
	}
	return nil
}

func conjuncts(e Expr, out []Expr) []Expr {
	if b, ok := e.(*Binary); ok && b.Op == "and" {
		return conjuncts(b.R, conjuncts(b.L, out))
	}
	return append(out, e)
}

// paramOrder lists parameter names in order of first appearance in the text.
func paramOrder(q *Query) []string {
	var names []string
	seen := map[string]bool{}
	var walk func(e Expr)
	walk = func(e Expr) {
		switch x := e.(type) {
		case *Param:
			if !seen[x.Name] {
				seen[x.Name] = true
				names = append(names, x.Name)
			}
		case *Binary:
			walk(x.L)
			walk(x.R)
		case *In:
			walk(x.X)
			for _, it := range x.Items {
				walk(it)
			}
		case *Unary:
			walk(x.X)
		}
	}
	for _, cl := range q.Clauses {
		switch cl := cl.(type) {
		case *WhereClause:
			walk(cl.Cond)
		case *ComputeClause:
			for _, it := range cl.Items {
				walk(it.Expr)
			}
		case *SummarizeClause:
			for _, it := range cl.Items {
				walk(it.Expr)
			}
		}
	}
	return names
}

// analyse fills the parts of Analysis that need the whole query.
func (c *compiler) analyse(q *Query) {
	a := &c.p.analysis
	if c.primary.Name == "devices" {
	clauses:
		for _, cl := range q.Clauses {
			switch cl := cl.(type) {
			case *JoinClause:
				break clauses
			case *WhereClause:
				if k := c.deviceKey(cl.Cond); k != nil {
					a.DeviceKey = k
					break clauses
				}
			}
		}
		a.DeviceOnly = len(a.Joins) == 0
		for _, f := range a.Fields {
			if !c.s.IsDeviceField(f) {
				a.DeviceOnly = false
			}
		}
	}
}

func (c *compiler) deviceKey(e Expr) *DeviceKey {
	for _, conj := range conjuncts(e, nil) {
		b, ok := conj.(*Binary)
		if !ok || b.Op != "==" {
			continue
		}
		f, fok := b.L.(*FieldRef)
		p, pok := b.R.(*Param)
		if !fok || !pok {
			f, fok = b.R.(*FieldRef)
			p, pok = b.L.(*Param)
		}
		if !fok || !pok {
			continue
		}
		if _, ok := c.comp[f.Name]; ok {
			continue
		}
		r, ok := c.s.resolveIn(c.primary, f.Name)
		if ok && (r.name == "device.name" || r.name == "device.collector.uid") {
			return &DeviceKey{Field: r.name, Parameter: p.Name}
		}
	}
	return nil
}

// Analysis describes the query for callers that decide how to answer it.
func (p *Plan) Analysis() Analysis {
	a := p.analysis
	a.Joins = append([]string(nil), a.Joins...)
	a.Parameters = append([]string(nil), a.Parameters...)
	a.Headers = append([]string(nil), a.Headers...)
	a.Types = append([]FieldType(nil), a.Types...)
	a.Fields = append([]string(nil), a.Fields...)
	if a.DeviceKey != nil {
		k := *a.DeviceKey
		a.DeviceKey = &k
	}
	return a
}
