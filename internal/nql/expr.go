package nql

import "strings"

// value compiles e to a function returning its value, and its static type.
func (c *compiler) value(e Expr, sc *scope) (valueFn, FieldType, error) {
	switch x := e.(type) {
	case *Literal:
		v := x.Value
		return func(*env) Value { return v }, literalType(v), nil
	case *Param:
		slot := c.addParam(x, TypeString, "")
		return paramRead(slot), TypeString, nil
	case *FieldRef:
		fn, typ, _, err := c.fieldRead(x, sc)
		return fn, typ, err
	case *Call:
		return c.aggregate(x, sc)
	case *Unary:
		if x.Op == "-" {
			fn, typ, err := c.operand(x.X, TypeInt, "-", sc)
			if err != nil {
				return nil, 0, err
			}
			if typ != TypeInt && typ != TypeFloat {
				typ = TypeAny
			}
			return func(e *env) Value { return negate(fn(e)) }, typ, nil
		}
	case *Binary:
		switch x.Op {
		case "+", "-", "*", "/":
			return c.arith(x, sc)
		}
	}
	pred, err := c.pred(e, sc)
	if err != nil {
		return nil, 0, err
	}
	return func(e *env) Value { return pred(e) }, TypeBool, nil
}

func literalType(v Value) FieldType {
	switch v.(type) {
	case string:
		return TypeString
	case int64:
		return TypeInt
	case float64:
		return TypeFloat
	case bool:
		return TypeBool
	}
	return TypeAny
}

func paramRead(slot int) valueFn { return func(e *env) Value { return e.params[slot] } }

func (c *compiler) addParam(x *Param, typ FieldType, field string) int {
	slot := len(c.p.params)
	c.p.params = append(c.p.params, paramUse{name: x.Name, typ: typ, field: field})
	c.paramSlot[x] = slot
	return slot
}

// operand compiles one side of a comparison, converting a parameter or a string
// literal to hint, the type of the other side. what names the other side in errors.
func (c *compiler) operand(e Expr, hint FieldType, what string, sc *scope) (valueFn, FieldType, error) {
	switch x := e.(type) {
	case *Param:
		if hint == TypeAny {
			hint = TypeString
		}
		return paramRead(c.addParam(x, hint, what)), hint, nil
	case *Literal:
		if s, ok := x.Value.(string); ok && hint != TypeAny && hint != TypeString {
			v, ok := convertString(s, hint)
			if !ok {
				return nil, 0, x.Pos.errorf("cannot use %q as %s with %s", s, typeNoun(hint), what)
			}
			return func(*env) Value { return v }, hint, nil
		}
	}
	return c.value(e, sc)
}

func typeNoun(t FieldType) string {
	switch t {
	case TypeInt, TypeFloat:
		return "a number"
	case TypeBool:
		return "a boolean"
	case TypeDateTime:
		return "a date-time"
	}
	return "a " + t.String()
}

func isConstLike(e Expr) bool {
	switch e.(type) {
	case *Param, *Literal:
		return true
	}
	return false
}

func describe(e Expr) string {
	switch x := e.(type) {
	case *FieldRef:
		return x.Name
	case *Call:
		if x.Field != nil {
			return x.Field.Name + "." + x.Func + "()"
		}
		return x.Func + "()"
	}
	return "an expression"
}

// pair compiles both sides of a comparison, the constant side last so it can take
// the type of the other.
func (c *compiler) pair(l, r Expr, sc *scope) (lf, rf valueFn, lt, rt FieldType, err error) {
	if isConstLike(l) && !isConstLike(r) {
		if rf, rt, err = c.value(r, sc); err != nil {
			return
		}
		lf, lt, err = c.operand(l, rt, describe(r), sc)
		return
	}
	if lf, lt, err = c.value(l, sc); err != nil {
		return
	}
	rf, rt, err = c.operand(r, lt, describe(l), sc)
	return
}

// wildcard returns the compiled pattern when e is a string literal with `*` compared
// with a field of type t that holds text. Parameters never act as patterns: a
// chatbot user typing `*` must not match every device.
func wildcard(e Expr, t FieldType) *pattern {
	lit, ok := e.(*Literal)
	if !ok || (t != TypeString && t != TypeAny) {
		return nil
	}
	s, ok := lit.Value.(string)
	if !ok || !hasWildcard(s) {
		return nil
	}
	p := compilePattern(s)
	return &p
}

func isBoolExpr(e Expr) bool {
	switch x := e.(type) {
	case *Binary:
		switch x.Op {
		case "+", "-", "*", "/":
			return false
		}
		return true
	case *In:
		return true
	case *Unary:
		return x.Op == "!"
	}
	return false
}

// pred compiles e as a filter. Comparisons follow NQL null rules: null equals only
// null, and any other comparison with null is false except !=.
func (c *compiler) pred(e Expr, sc *scope) (predFn, error) {
	switch x := e.(type) {
	case *Binary:
		switch x.Op {
		case "and", "or":
			l, err := c.pred(x.L, sc)
			if err != nil {
				return nil, err
			}
			r, err := c.pred(x.R, sc)
			if err != nil {
				return nil, err
			}
			if x.Op == "and" {
				return func(e *env) bool { return l(e) && r(e) }, nil
			}
			return func(e *env) bool { return l(e) || r(e) }, nil
		case "==", "!=":
			return c.equality(x, sc)
		case "<", "<=", ">", ">=":
			return c.ordering(x, sc)
		case "contains":
			return c.containsPred(x, sc)
		}
	case *In:
		return c.inPred(x, sc)
	case *Unary:
		if x.Op == "!" {
			if isBoolExpr(x.X) {
				p, err := c.pred(x.X, sc)
				if err != nil {
					return nil, err
				}
				return func(e *env) bool { return !p(e) }, nil
			}
			// A missing value stays unmatched even when negated.
			fn, _, err := c.value(x.X, sc)
			if err != nil {
				return nil, err
			}
			return func(e *env) bool { b, ok := fn(e).(bool); return ok && !b }, nil
		}
	}
	fn, _, err := c.value(e, sc)
	if err != nil {
		return nil, err
	}
	return func(e *env) bool { b, _ := fn(e).(bool); return b }, nil
}

func (c *compiler) equality(x *Binary, sc *scope) (predFn, error) {
	lf, rf, lt, rt, err := c.pair(x.L, x.R, sc)
	if err != nil {
		return nil, err
	}
	neq := x.Op == "!="
	side, pat := lf, wildcard(x.R, lt)
	if pat == nil {
		side, pat = rf, wildcard(x.L, rt)
	}
	if pat != nil {
		return func(e *env) bool {
			s, ok := toText(side(e))
			if !ok {
				return neq
			}
			return pat.match(s) != neq
		}, nil
	}
	if lit, ok := x.R.(*Literal); ok {
		if k, ok := lit.Value.(string); ok {
			kv := Value(k)
			return func(e *env) bool {
				v := lf(e)
				if s, ok := v.(string); ok {
					return strings.EqualFold(s, k) != neq
				}
				return equal(v, kv) != neq
			}, nil
		}
	}
	return func(e *env) bool { return equal(lf(e), rf(e)) != neq }, nil
}

func (c *compiler) ordering(x *Binary, sc *scope) (predFn, error) {
	lf, rf, _, _, err := c.pair(x.L, x.R, sc)
	if err != nil {
		return nil, err
	}
	var want func(int) bool
	switch x.Op {
	case "<":
		want = func(c int) bool { return c < 0 }
	case "<=":
		want = func(c int) bool { return c <= 0 }
	case ">":
		want = func(c int) bool { return c > 0 }
	default:
		want = func(c int) bool { return c >= 0 }
	}
	return func(e *env) bool {
		c, ok := compare(lf(e), rf(e))
		return ok && want(c)
	}, nil
}

func (c *compiler) containsPred(x *Binary, sc *scope) (predFn, error) {
	lf, _, err := c.value(x.L, sc)
	if err != nil {
		return nil, err
	}
	rf, _, err := c.operand(x.R, TypeString, describe(x.L), sc)
	if err != nil {
		return nil, err
	}
	return func(e *env) bool {
		s, ok := toText(lf(e))
		if !ok {
			return false
		}
		sub, ok := toText(rf(e))
		if !ok {
			return false
		}
		i, _ := indexFold(s, sub)
		return i >= 0
	}, nil
}

type inItem struct {
	pat     *pattern
	konst   Value
	isConst bool
	fn      valueFn
}

func (c *compiler) inPred(x *In, sc *scope) (predFn, error) {
	xf, xt, err := c.value(x.X, sc)
	if err != nil {
		return nil, err
	}
	items := make([]inItem, 0, len(x.Items))
	for _, it := range x.Items {
		if pat := wildcard(it, xt); pat != nil {
			items = append(items, inItem{pat: pat})
			continue
		}
		fn, _, err := c.operand(it, xt, describe(x.X), sc)
		if err != nil {
			return nil, err
		}
		if _, ok := it.(*Literal); ok {
			items = append(items, inItem{konst: fn(nil), isConst: true})
		} else {
			items = append(items, inItem{fn: fn})
		}
	}
	not := x.Not
	return func(e *env) bool {
		v := xf(e)
		for k := range items {
			it := &items[k]
			switch {
			case it.pat != nil:
				if s, ok := toText(v); ok && it.pat.match(s) {
					return !not
				}
			case it.isConst:
				if equal(v, it.konst) {
					return !not
				}
			default:
				if equal(v, it.fn(e)) {
					return !not
				}
			}
		}
		return not
	}, nil
}

func (c *compiler) arith(x *Binary, sc *scope) (valueFn, FieldType, error) {
	var lf, rf valueFn
	var lt, rt FieldType
	var err error
	// Constants take the numeric type of the other side; a bare one is a number.
	hint := func(t FieldType) FieldType {
		if t == TypeFloat {
			return TypeFloat
		}
		return TypeInt
	}
	if isConstLike(x.L) && !isConstLike(x.R) {
		if rf, rt, err = c.value(x.R, sc); err != nil {
			return nil, 0, err
		}
		if lf, lt, err = c.operand(x.L, hint(rt), describe(x.R), sc); err != nil {
			return nil, 0, err
		}
	} else {
		if lf, lt, err = c.operand(x.L, TypeInt, describe(x.R), sc); err != nil {
			return nil, 0, err
		}
		if rf, rt, err = c.operand(x.R, hint(lt), describe(x.L), sc); err != nil {
			return nil, 0, err
		}
	}
	typ := TypeAny
	switch {
	case lt == TypeInt && rt == TypeInt && x.Op != "/":
		typ = TypeInt
	case (lt == TypeInt || lt == TypeFloat) && (rt == TypeInt || rt == TypeFloat):
		typ = TypeFloat
	}
	op := x.Op[0]
	return func(e *env) Value { return arith(op, lf(e), rf(e)) }, typ, nil
}

// arith applies + - * / with NQL rules: null in, null out; int op int stays int
// except /, which is float; division by zero is null.
func arith(op byte, a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	ai, af, aInt, ok := toNumber(a)
	if !ok {
		return nil
	}
	bi, bf, bInt, ok := toNumber(b)
	if !ok {
		return nil
	}
	if aInt && bInt {
		switch op {
		case '+':
			return ai + bi
		case '-':
			return ai - bi
		case '*':
			return ai * bi
		}
		if bi == 0 {
			return nil
		}
		return float64(ai) / float64(bi)
	}
	if aInt {
		af = float64(ai)
	}
	if bInt {
		bf = float64(bi)
	}
	switch op {
	case '+':
		return af + bf
	case '-':
		return af - bf
	case '*':
		return af * bf
	}
	if bf == 0 {
		return nil
	}
	return af / bf
}

func negate(v Value) Value {
	i, f, isInt, ok := toNumber(v)
	if !ok {
		return nil
	}
	if isInt {
		return -i
	}
	return -f
}

func (c *compiler) aggregate(x *Call, sc *scope) (valueFn, FieldType, error) {
	fn, ok := aggByName(x.Func)
	if !ok {
		return nil, 0, x.Pos.errorf("unknown function %q", x.Func)
	}
	if sc.aggs == nil || sc.inAgg {
		return nil, 0, x.Pos.errorf("%s() is an aggregate: use it in a compute right after with or include, or in summarize", x.Func)
	}
	ap := aggPlan{fn: fn, slot: c.p.nAggs}
	typ := TypeInt
	switch {
	case x.Field == nil && fn != aggCount:
		return nil, 0, x.Pos.errorf("%s() needs a field: write <field>.%s()", x.Func, x.Func)
	case x.Field != nil && fn == aggCount && c.isObjectOf(x.Field.Name, sc):
		// device.count(), package.count(): count rows, as count() does.
	case x.Field != nil:
		inner := *sc
		inner.inAgg = true
		arg, at, _, err := c.fieldRead(x.Field, &inner)
		if err != nil {
			return nil, 0, err
		}
		ap.arg = arg
		switch fn {
		case aggCount:
			typ = TypeInt
		case aggAvg:
			typ = TypeFloat
		case aggSum:
			typ = TypeAny
			if at == TypeInt || at == TypeFloat {
				typ = at
			}
		default:
			typ = at
		}
	}
	if fn == aggLast && sc.aggTable != nil && sc.aggTable.TimeField != "" {
		ap.timeField = sc.aggTable.TimeField
		c.addField(ap.timeField)
	}
	c.p.nAggs++
	*sc.aggs = append(*sc.aggs, ap)
	slot := ap.slot
	return func(e *env) Value { return e.aggv[slot] }, typ, nil
}

// isObjectOf reports whether name is an object the aggregated rows link to.
func (c *compiler) isObjectOf(name string, sc *scope) bool {
	t := sc.aggTable
	if t == nil {
		return false
	}
	return name == t.Object || contains(t.Links, name)
}
