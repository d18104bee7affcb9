package topic

import (
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// Names every rule environment declares besides the fields.
const (
	fieldsVar = "fields" // map of every field by its full name, for names CEL cannot spell
	nowVar    = "now"    // the evaluation time, a timestamp
)

// costLimit bounds the work of one evaluation (CEL's cost units, roughly one per
// operation), so a runaway comprehension in a topic file cannot stall a worker.
const costLimit = 1_000_000

// notDeclarable are names that cannot be CEL variables because the environment already
// uses them (type names, fieldsVar, nowVar). A field with such a name is still
// readable as fields["name"].
var notDeclarable = map[string]bool{
	"bool": true, "bytes": true, "double": true, "duration": true, "dyn": true,
	"int": true, "list": true, "map": true, "null_type": true, "string": true,
	"timestamp": true, "type": true, "uint": true, "optional_type": true,
	fieldsVar: true, nowVar: true,
}

// newEnv returns the CEL environment of a topic whose queries list headers.
//
// Every header is declared as a dyn variable under its full dotted name
// ("device.boot.days_since_last_full_boot"): CEL resolves a qualified name to the
// longest declared variable, so the dotted names work as written and a name no query
// lists is a compile error. Cross-type numeric comparisons are on, so a double field
// compares with an int literal.
func newEnv(headers []string) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		cel.Variable(fieldsVar, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(nowVar, cel.TimestampType),
		cel.Function(strictEq, cel.Overload("strict_equals_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.BoolType,
			cel.BinaryBinding(strictEqual))),
		cel.Function(strictNe, cel.Overload("strict_not_equals_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				v := strictEqual(a, b)
				if eq, ok := v.(types.Bool); ok {
					return !eq
				}
				return v
			}))),
		cel.Function(strictIn, cel.Overload("strict_in_dyn", []*cel.Type{cel.DynType, cel.DynType}, cel.BoolType,
			cel.BinaryBinding(strictContains))),
		cel.Function("datetime",
			cel.Overload("datetime_string", []*cel.Type{cel.StringType}, cel.TimestampType,
				cel.UnaryBinding(datetimeOf)),
			cel.Overload("datetime_timestamp", []*cel.Type{cel.TimestampType}, cel.TimestampType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return v })),
		),
	}
	for _, h := range headers {
		if !notDeclarable[h] {
			opts = append(opts, cel.Variable(h, cel.DynType))
		}
	}
	return cel.NewEnv(opts...)
}

// The functions ==, != and in are compiled to (see rewrite). A parsed expression
// cannot name them.
const (
	strictEq = "@strict_equals"
	strictNe = "@strict_not_equals"
	strictIn = "@strict_in"
)

// strictEqual is CEL equality, except that comparing values of different kinds is an
// error rather than false: a field of the wrong type ("1" == 1, or a list where the
// rule expects text) must leave the rule not evaluated, not clear or found. Numbers
// (int, uint, double) are one kind; null compares with anything.
func strictEqual(a, b ref.Val) ref.Val {
	if a.Type() != types.NullType && b.Type() != types.NullType && kindOf(a) != kindOf(b) {
		return types.NewErr("cannot compare %s with %s", a.Type().TypeName(), b.Type().TypeName())
	}
	return a.Equal(b)
}

// strictContains is `in` with strictEqual for lists; for maps it is CEL's key test.
func strictContains(elem, container ref.Val) ref.Val {
	switch c := container.(type) {
	case traits.Lister:
		for it := c.Iterator(); it.HasNext() == types.True; {
			v := strictEqual(elem, it.Next())
			if v != types.False {
				return v // true or an error
			}
		}
		return types.False
	case traits.Container:
		return c.Contains(elem)
	}
	return types.MaybeNoSuchOverloadErr(container)
}

func kindOf(v ref.Val) string {
	switch v.Type() {
	case types.IntType, types.UintType, types.DoubleType:
		return "number"
	}
	return v.Type().TypeName()
}

// dateTimeLayouts are the forms a date-time field takes: NQL API rows ("2023-07-17
// 17:53:49", UTC when asked with x-utc-times), v2 execution times and RFC 3339.
var dateTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"}

// datetimeOf implements datetime(string): an NQL date-time as a timestamp, UTC when
// the text has no zone.
func datetimeOf(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, string(s)); err == nil {
			return types.Timestamp{Time: t.UTC()}
		}
	}
	return types.NewErr("datetime: cannot read %q as a date-time", string(s))
}

// expression is a compiled CEL expression and the fields it reads.
type expression struct {
	src    string
	prg    cel.Program
	fields []string // full names, in order of first use
	out    *cel.Type
}

// compileExpr compiles src in env. known holds the fields the topic's queries list.
// The error is a single line naming the position in src.
func compileExpr(env *cel.Env, src string, known map[string]bool) (*expression, error) {
	parsed, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil, issuesError(iss)
	}
	rewrite(parsed.NativeRep().Expr())
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, issuesError(iss)
	}
	fields, err := fieldsRead(checked.NativeRep(), known)
	if err != nil {
		return nil, err
	}
	prg, err := env.Program(checked, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	return &expression{src: src, prg: prg, fields: fields, out: checked.OutputType()}, nil
}

// issuesError turns CEL issues into one line per issue, each with its position.
func issuesError(iss *cel.Issues) error {
	var parts []string
	for _, e := range iss.Errors() {
		msg := e.Message
		if strings.Contains(msg, "undeclared reference") {
			msg += "; a rule or param can only read the fields its topic's queries list (or fields[\"name\"] for one of them)"
		}
		loc := e.Location
		if loc.Line() > 1 {
			parts = append(parts, fmt.Sprintf("line %d, column %d: %s", loc.Line(), loc.Column()+1, msg))
		} else {
			parts = append(parts, fmt.Sprintf("column %d: %s", loc.Column()+1, msg))
		}
	}
	if len(parts) == 0 {
		return iss.Err()
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// fieldsRead lists the fields a checked expression reads: every identifier or
// qualified name the checker resolved to a field variable, and every
// fields["literal"]. Any other use of fields (a computed key, iteration) is refused,
// so that the evidence of a rule is known before it runs.
func fieldsRead(a *ast.AST, known map[string]bool) ([]string, error) {
	refs := a.ReferenceMap()
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	var errs []string
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.AllMatcher()) {
		if e.Kind() != ast.IdentKind && e.Kind() != ast.SelectKind {
			continue
		}
		r, ok := refs[e.ID()]
		if !ok || r.Value != nil {
			continue
		}
		switch {
		case r.Name == fieldsVar:
			name, ok := literalIndex(e)
			if !ok {
				errs = append(errs, `fields can only be read with a literal name, as fields["device.name"]`)
				continue
			}
			if !known[name] {
				errs = append(errs, fmt.Sprintf("fields[%q]: no query of this topic lists %s", name, name))
				continue
			}
			add(name)
		case known[r.Name]:
			add(r.Name)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// literalIndex returns "x" when e is the operand of e["x"].
func literalIndex(e ast.NavigableExpr) (string, bool) {
	p, ok := e.Parent()
	if !ok || p.Kind() != ast.CallKind {
		return "", false
	}
	c := p.AsCall()
	if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[0].ID() != e.ID() {
		return "", false
	}
	k := c.Args()[1]
	if k.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := k.AsLiteral().(types.String)
	return string(s), ok
}

// rewrite adapts a parsed expression to the fields' values, in place:
//
//   - every int literal that is a direct operand of arithmetic (+ - * /) or of a
//     comparison whose other operand is not an int by construction (an int literal,
//     size(), int(), or arithmetic of those) becomes the equal double literal. Fields
//     hold numbers as doubles (see Evaluate), and CEL has no int/double arithmetic:
//     without this, `free_space + 1 > 6` would fail at run time and
//     `(a + 1) * 2 == 19.0` would not even type-check;
//   - ==, != and in become strictEq, strictNe and strictIn, which refuse to compare
//     values of different kinds.
//
// It reports whether e is an int by construction.
func rewrite(e ast.Expr) bool {
	switch e.Kind() {
	case ast.LiteralKind:
		_, ok := e.AsLiteral().(types.Int)
		return ok
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			rewrite(c.Target())
		}
		args := c.Args()
		ints := make([]bool, len(args))
		for i, a := range args {
			ints[i] = rewrite(a)
		}
		fn := c.FunctionName()
		switch fn {
		case operators.Add, operators.Subtract, operators.Multiply, operators.Divide,
			operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
			operators.Greater, operators.GreaterEquals:
			if len(args) != 2 {
				return false
			}
			arith := fn == operators.Add || fn == operators.Subtract || fn == operators.Multiply || fn == operators.Divide
			if ints[0] && ints[1] {
				return arith // two ints: CEL's own semantics apply
			}
			fac := ast.NewExprFactory()
			for i := range 2 {
				if ints[i] && args[i].Kind() == ast.LiteralKind {
					n := args[i].AsLiteral().(types.Int)
					args[i].SetKindCase(fac.NewLiteral(args[i].ID(), types.Double(n)))
				}
			}
			switch fn {
			case operators.Equals:
				e.SetKindCase(fac.NewCall(e.ID(), strictEq, args...))
			case operators.NotEquals:
				e.SetKindCase(fac.NewCall(e.ID(), strictNe, args...))
			}
			return false
		case operators.In:
			if len(args) == 2 {
				e.SetKindCase(ast.NewExprFactory().NewCall(e.ID(), strictIn, args...))
			}
			return false
		case operators.Modulo:
			return len(ints) == 2 && ints[0] && ints[1]
		case operators.Negate:
			return len(ints) == 1 && ints[0]
		case operators.Conditional:
			return len(ints) == 3 && ints[1] && ints[2]
		case overloads.Size, overloads.TypeConvertInt:
			return true
		}
		return false
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		for _, x := range []ast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			rewrite(x)
		}
	case ast.ListKind:
		for _, x := range e.AsList().Elements() {
			rewrite(x)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			m := en.AsMapEntry()
			rewrite(m.Key())
			rewrite(m.Value())
		}
	case ast.SelectKind:
		rewrite(e.AsSelect().Operand())
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			rewrite(f.AsStructField().Value())
		}
	}
	return false
}
