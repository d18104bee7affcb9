package nxql

import (
	"slices"
	"strconv"
	"strings"
)

// mode is the shape of a select statement.
type mode int

const (
	modeObjects mode = iota + 1 // (from device ...): one row per object
	modePairs                   // (from (device user) (with session ...)): one row per linked pair
	modeEvents                  // (from session ...) or (from (session device user) ...): one row per event
)

// Query is a compiled NXQL select statement, safe for concurrent runs.
type Query struct {
	mode    mode
	from    *Table   // the object table (objects, pairs) or the event table (events)
	second  *Table   // the second object of a pair
	columns []column // output columns, in order
	wheres  []where
	withs   []with
	window  *between // events only
	order   *orderBy
	limit   int // -1: none
}

type column struct {
	name  string // output key
	table *Table // table the field belongs to
	field *Field
	agg   *aggRef
}

type aggRef struct {
	with int // index in Query.withs
	agg  *Aggregate
}

// where is one (where table filter...) clause; its filters are alternatives.
type where struct {
	table   *Table
	filters []filter
}

// filter is a comparison or a logical combination of filters.
type filter struct {
	op    string // eq ne gt ge lt le, and or not
	table *Table
	field *Field
	value literal
	subs  []filter
}

type with struct {
	event    *Table
	wheres   []where
	computes []*Aggregate
	window   *between
}

type between struct {
	from, to timeExpr
}

type orderBy struct {
	col  column
	desc bool
}

// Compile parses and checks a query against the schema. Errors are *Error.
func Compile(text string, s *Schema) (*Query, error) {
	root, err := read(text)
	if err != nil {
		return nil, err
	}
	c := &compiler{s: s}
	return c.selectStmt(root)
}

type compiler struct {
	s *Schema
	q *Query
}

func (c *compiler) selectStmt(n *node) (*Query, error) {
	if n.head() != "select" {
		if n.isList && n.head() != "" {
			return nil, errorAt(n.list[0].pos(), "unknown statement %q: want select", n.head())
		}
		return nil, errorAt(n.pos(), "want (select (fields) (from table ...))")
	}
	if len(n.list) < 3 {
		return nil, errorAt(n.pos(), "select wants a field list and a from clause")
	}
	c.q = &Query{limit: -1}
	var orderNode, limitNode *node
	fromNode := n.list[2]
	if fromNode.head() != "from" {
		return nil, errorAt(fromNode.pos(), "want (from table ...) after the field list, got %s", fromNode.describe())
	}
	for _, x := range n.list[3:] {
		switch x.head() {
		case "order_by":
			if orderNode != nil {
				return nil, errorAt(x.pos(), "order_by given twice")
			}
			orderNode = x
		case "limit":
			if limitNode != nil {
				return nil, errorAt(x.pos(), "limit given twice")
			}
			limitNode = x
		default:
			return nil, c.unknownForm(x, "order_by", "limit")
		}
	}
	if err := c.from(fromNode); err != nil {
		return nil, err
	}
	if err := c.fields(n.list[1]); err != nil {
		return nil, err
	}
	if orderNode != nil {
		if err := c.orderBy(orderNode); err != nil {
			return nil, err
		}
	}
	if limitNode != nil {
		if len(limitNode.list) != 2 || limitNode.list[1].isList {
			return nil, errorAt(limitNode.pos(), "want (limit number)")
		}
		v, err := strconv.Atoi(limitNode.list[1].tok.text)
		if err != nil || v < 0 {
			return nil, errorAt(limitNode.list[1].pos(), "limit %q: want a whole number, 0 or more", limitNode.list[1].tok.text)
		}
		c.q.limit = v
	}
	return c.q, nil
}

func (c *compiler) unknownForm(x *node, allowed ...string) error {
	name := x.head()
	if name == "" {
		e := errorAt(x.pos(), "unexpected %s", x.describe())
		e.Options = allowed
		return e
	}
	e := errorAt(x.pos(), "unknown form %q here", name)
	e.Options = allowed
	return e
}

func (c *compiler) table(n *node) (*Table, error) {
	if n.isList || n.tok.kind != tokSymbol {
		return nil, errorAt(n.pos(), "want a table name, got %s", n.describe())
	}
	t, ok := c.s.Table(n.tok.text)
	if !ok {
		e := errorAt(n.pos(), "unknown table %q", n.tok.text)
		e.Options = c.s.TableNames()
		return nil, e
	}
	return t, nil
}

// from reads (from table clause...), (from (event object...) clause...) or
// (from (object object) (with event ...)).
func (c *compiler) from(n *node) error {
	if len(n.list) < 2 {
		return errorAt(n.pos(), "from wants a table")
	}
	q := c.q
	spec := n.list[1]
	var tables []*Table
	if spec.isList {
		if len(spec.list) == 0 {
			return errorAt(spec.pos(), "empty table list")
		}
		for _, x := range spec.list {
			t, err := c.table(x)
			if err != nil {
				return err
			}
			tables = append(tables, t)
		}
	} else {
		t, err := c.table(spec)
		if err != nil {
			return err
		}
		tables = []*Table{t}
	}
	q.from = tables[0]
	switch {
	case q.from.Kind == KindEvent:
		q.mode = modeEvents
		for _, t := range tables[1:] {
			if !slices.Contains(q.from.Links, t.Name) {
				e := errorAt(spec.pos(), "table %s is not linked to %s events", t.Name, q.from.Name)
				e.Options = q.from.Links
				return e
			}
		}
	case len(tables) == 1:
		if q.from.Source == "" {
			return errorAt(spec.pos(), "table %s can only be read through the events that link it (from ([event] %s) ...)", q.from.Name, q.from.Name)
		}
		q.mode = modeObjects
	case len(tables) == 2 && tables[1].Kind == KindObject:
		if q.from.Source == "" {
			return errorAt(spec.pos(), "table %s cannot be the first of a pair: start with device or user", q.from.Name)
		}
		q.mode, q.second = modePairs, tables[1]
	default:
		return errorAt(spec.pos(), "want one object table, an event table with its linked objects, or two objects")
	}
	for _, x := range n.list[2:] {
		switch x.head() {
		case "where":
			w, err := c.where(x, tables)
			if err != nil {
				return err
			}
			q.wheres = append(q.wheres, w)
		case "with":
			if q.mode == modeEvents {
				return errorAt(x.pos(), "with applies to objects, not to %s events", q.from.Name)
			}
			w, err := c.with(x, tables)
			if err != nil {
				return err
			}
			q.withs = append(q.withs, w)
		case "between":
			if q.mode != modeEvents {
				return errorAt(x.pos(), "between applies to events: put it inside (with [event] ...)")
			}
			if q.window != nil {
				return errorAt(x.pos(), "between given twice")
			}
			b, err := c.between(x)
			if err != nil {
				return err
			}
			q.window = b
		default:
			return c.unknownForm(x, "where", "with", "between")
		}
	}
	if q.mode == modePairs {
		if len(q.withs) != 1 {
			return errorAt(n.pos(), "a pair of objects wants exactly one (with [event] ...) that links them")
		}
		ev := q.withs[0].event
		if !slices.Contains(ev.Links, q.from.Name) || !slices.Contains(ev.Links, q.second.Name) {
			return errorAt(n.pos(), "%s events do not link %s and %s", ev.Name, q.from.Name, q.second.Name)
		}
	}
	return nil
}

// where reads (where table filter...); table must be one of tables or, for
// events, a table they link.
func (c *compiler) where(n *node, tables []*Table) (where, error) {
	if len(n.list) < 3 {
		return where{}, errorAt(n.pos(), "want (where table (filter ...)...)")
	}
	t, err := c.table(n.list[1])
	if err != nil {
		return where{}, err
	}
	allowed := false
	var names []string
	for _, x := range tables {
		names = append(names, x.Name)
		allowed = allowed || x == t
		if x.Kind == KindEvent && slices.Contains(x.Links, t.Name) {
			allowed = true
		}
	}
	if !allowed {
		e := errorAt(n.list[1].pos(), "where on %s: not a table of this clause", t.Name)
		e.Options = names
		return where{}, e
	}
	w := where{table: t}
	for _, x := range n.list[2:] {
		f, err := c.filter(x, t)
		if err != nil {
			return where{}, err
		}
		w.filters = append(w.filters, f)
	}
	return w, nil
}

var comparisons = []string{"eq", "ne", "gt", "ge", "lt", "le"}

func (c *compiler) filter(n *node, t *Table) (filter, error) {
	op := n.head()
	switch op {
	case "and", "or", "not":
		if len(n.list) < 2 || op == "not" && len(n.list) != 2 {
			return filter{}, errorAt(n.pos(), "want (%s (filter)...)", op)
		}
		f := filter{op: op}
		for _, x := range n.list[1:] {
			sub, err := c.filter(x, t)
			if err != nil {
				return filter{}, err
			}
			f.subs = append(f.subs, sub)
		}
		return f, nil
	}
	if !slices.Contains(comparisons, op) {
		if op == "" {
			return filter{}, errorAt(n.pos(), "want a filter such as (eq name (string \"x\")), got %s", n.describe())
		}
		e := errorAt(n.list[0].pos(), "unknown filter %q", op)
		e.Options = append(slices.Clone(comparisons), "and", "or", "not")
		return filter{}, e
	}
	if len(n.list) != 3 {
		return filter{}, errorAt(n.pos(), "want (%s field (type value))", op)
	}
	fnode := n.list[1]
	if fnode.isList || fnode.tok.kind == tokString {
		return filter{}, errorAt(fnode.pos(), "want a field name, got %s", fnode.describe())
	}
	fld, ok := t.field(fnode.tok.text)
	if !ok {
		e := errorAt(fnode.pos(), "unknown field %q of table %s", fnode.tok.text, t.Name)
		e.Options = t.fieldNames()
		return filter{}, e
	}
	lit, err := c.literal(n.list[2])
	if err != nil {
		return filter{}, err
	}
	if !accepts(fld.Type, lit.typ) {
		return filter{}, errorAt(n.list[2].pos(), "field %s is of type %s: cannot compare it with a %s", fld.Name, fld.Type, lit.typ)
	}
	if lit.typ == TypePattern && op != "eq" && op != "ne" {
		return filter{}, errorAt(n.list[2].pos(), "a pattern only goes with eq or ne")
	}
	if lit.typ == TypeEnum && fld.Enum != nil && !enumKnown(fld.Enum, lit.str) {
		e := errorAt(n.list[2].pos(), "%q is not a value of %s", lit.str, fld.Name)
		e.Options = enumValues(fld.Enum)
		return filter{}, e
	}
	return filter{op: op, table: t, field: fld, value: lit}, nil
}

func enumKnown(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

func enumValues(m map[string]string) []string {
	var out []string
	for _, x := range m {
		out = append(out, x)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// literal reads (type value).
func (c *compiler) literal(n *node) (literal, error) {
	if !n.isList || len(n.list) != 2 || n.list[0].isList || n.list[1].isList {
		return literal{}, errorAt(n.pos(), "want a typed value such as (string \"x\"), got %s", n.describe())
	}
	typName := n.list[0].tok.text
	typ, ok := typeNames[typName]
	if !ok {
		e := errorAt(n.list[0].pos(), "unknown value type %q", typName)
		e.Options = []string{"boolean", "datetime", "enum", "integer", "pattern", "real", "string"}
		return literal{}, e
	}
	v := n.list[1]
	if v.tok.kind == tokHashString {
		return literal{}, errorAt(v.pos(), "want a value, got %s", v.tok.text)
	}
	return parseLiteral(typ, v.tok.text, v.pos())
}

func (c *compiler) between(n *node) (*between, error) {
	if len(n.list) != 3 || n.list[1].isList || n.list[2].isList {
		return nil, errorAt(n.pos(), "want (between datetime datetime)")
	}
	var b between
	for k, dst := range []*timeExpr{&b.from, &b.to} {
		x := n.list[k+1]
		t, ok := parseTime(x.tok.text)
		if !ok {
			return nil, errorAt(x.pos(), "%q is not a datetime: want now-7d, midnight-1d or 2024-01-31@08:00:00", x.tok.text)
		}
		*dst = t
	}
	return &b, nil
}

// with reads (with event (where ...)... (compute aggregate...) (between ...)).
func (c *compiler) with(n *node, objects []*Table) (with, error) {
	if len(n.list) < 2 {
		return with{}, errorAt(n.pos(), "want (with [event] ...)")
	}
	ev, err := c.table(n.list[1])
	if err != nil {
		return with{}, err
	}
	if ev.Kind != KindEvent {
		return with{}, errorAt(n.list[1].pos(), "with wants an event table, %s is an object table", ev.Name)
	}
	if !slices.Contains(ev.Links, objects[0].Name) {
		return with{}, errorAt(n.list[1].pos(), "%s events are not linked to %s", ev.Name, objects[0].Name)
	}
	w := with{event: ev}
	for _, x := range n.list[2:] {
		switch x.head() {
		case "where":
			wh, err := c.where(x, []*Table{ev})
			if err != nil {
				return with{}, err
			}
			w.wheres = append(w.wheres, wh)
		case "compute":
			if len(x.list) < 2 {
				return with{}, errorAt(x.pos(), "want (compute aggregate...)")
			}
			for _, a := range x.list[1:] {
				if a.isList || a.tok.kind != tokSymbol {
					return with{}, errorAt(a.pos(), "want an aggregate name, got %s", a.describe())
				}
				agg, ok := ev.aggs[a.tok.text]
				if !ok {
					e := errorAt(a.pos(), "unknown aggregate %q of %s events", a.tok.text, ev.Name)
					e.Options = ev.aggregateNames()
					return with{}, e
				}
				w.computes = append(w.computes, agg)
			}
		case "between":
			if w.window != nil {
				return with{}, errorAt(x.pos(), "between given twice")
			}
			b, err := c.between(x)
			if err != nil {
				return with{}, err
			}
			w.window = b
		default:
			return with{}, c.unknownForm(x, "where", "compute", "between")
		}
	}
	return w, nil
}

// fields reads the field list: (name device_uid ...) or, to name the table of
// each field, ((device (name)) (user (name))). An aggregate computed in a with
// clause is selected by its name; a name with '*' selects every matching field.
func (c *compiler) fields(n *node) error {
	q := c.q
	items := []*node{n}
	if n.isList {
		items = n.list
	}
	if len(items) == 0 {
		return errorAt(n.pos(), "empty field list")
	}
	if items[0].isList {
		for _, it := range items {
			if !it.isList && it.tok.kind == tokSymbol {
				// An aggregate beside the tables' fields: ((device (name)) number_of_sessions).
				if err := c.addField(it, q.from, ""); err != nil {
					return err
				}
				continue
			}
			if !it.isList || len(it.list) != 2 || it.list[0].isList {
				return errorAt(it.pos(), "want (table (field...)), got %s", it.describe())
			}
			t, err := c.table(it.list[0])
			if err != nil {
				return err
			}
			if !c.selectable(t) {
				return errorAt(it.list[0].pos(), "table %s is not in the from clause", t.Name)
			}
			fs := []*node{it.list[1]}
			if it.list[1].isList {
				fs = it.list[1].list
			}
			for _, f := range fs {
				if err := c.addField(f, t, t.Name+"."); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, it := range items {
		if it.isList {
			return errorAt(it.pos(), "want a field name, got %s", it.describe())
		}
		if err := c.addField(it, q.from, ""); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) selectable(t *Table) bool {
	q := c.q
	if t == q.from || t == q.second {
		return true
	}
	return q.mode == modeEvents && slices.Contains(q.from.Links, t.Name)
}

func (c *compiler) addField(n *node, t *Table, prefix string) error {
	q := c.q
	if n.isList || n.tok.kind == tokString {
		return errorAt(n.pos(), "want a field name, got %s", n.describe())
	}
	name := n.tok.text
	if strings.ContainsAny(name, "*?") {
		pat := strings.ToLower(name)
		found := false
		for k := range t.Fields {
			f := &t.Fields[k]
			if match(pat, f.Name) {
				q.columns = append(q.columns, column{name: prefix + f.Name, table: t, field: f})
				found = true
			}
		}
		if !found {
			e := errorAt(n.pos(), "no field of table %s matches %q", t.Name, name)
			e.Options = t.fieldNames()
			return e
		}
		return nil
	}
	if f, ok := t.field(name); ok {
		q.columns = append(q.columns, column{name: prefix + f.Name, table: t, field: f})
		return nil
	}
	if t == q.from || t == q.second {
		for k, w := range q.withs {
			for _, a := range w.computes {
				if a.Name == name {
					q.columns = append(q.columns, column{name: prefix + a.Name, agg: &aggRef{with: k, agg: a}})
					return nil
				}
			}
		}
	}
	e := errorAt(n.pos(), "unknown field %q of table %s", name, t.Name)
	e.Options = t.fieldNames()
	for _, w := range q.withs {
		for _, a := range w.computes {
			e.Options = append(e.Options, a.Name)
		}
	}
	return e
}

// orderBy reads (order_by field [asc|desc]): a selected column, a field of the
// from table, or a computed aggregate.
func (c *compiler) orderBy(n *node) error {
	q := c.q
	if len(n.list) < 2 || len(n.list) > 3 || n.list[1].isList {
		return errorAt(n.pos(), "want (order_by field [asc|desc])")
	}
	o := &orderBy{}
	if len(n.list) == 3 {
		switch n.list[2].tok.text {
		case "desc":
			o.desc = true
		case "asc":
		default:
			return errorAt(n.list[2].pos(), "want asc or desc, got %s", n.list[2].describe())
		}
	}
	name := n.list[1].tok.text
	for _, col := range q.columns {
		if col.name == name {
			o.col = col
			q.order = o
			return nil
		}
	}
	saved := len(q.columns)
	if err := c.addField(n.list[1], q.from, ""); err != nil {
		return err
	}
	o.col = q.columns[saved]
	q.columns = q.columns[:saved]
	q.order = o
	return nil
}
