package nql

import "time"

// Query is a parsed query: a table, an optional timeframe and its clauses, with
// names as written (Compile resolves them).
type Query struct {
	Table     string
	TablePos  Pos
	Timeframe *Timeframe
	Clauses   []Clause
}

// Timeframe is a relative time selection such as `during past 7d`.
type Timeframe struct {
	Pos      Pos
	Duration time.Duration
	Text     string // as written: "7d"
}

// Clause is one `|`-separated step of a query.
type Clause interface{ clausePos() Pos }

// JoinClause is `with <table> [timeframe]` or `include <table> [timeframe]`.
type JoinClause struct {
	Pos       Pos
	Include   bool
	Table     string
	TablePos  Pos
	Timeframe *Timeframe
}

// WhereClause is `where <expr>`.
type WhereClause struct {
	Pos  Pos
	Cond Expr
}

// Assign is `name = <expr>` in compute and summarize.
type Assign struct {
	Pos  Pos
	Name string
	Expr Expr
}

// ComputeClause is `compute name = <expr>[, ...]`.
type ComputeClause struct {
	Pos   Pos
	Items []Assign
}

// SummarizeClause is `summarize name = <expr>[, ...] [by field[, ...]]`.
type SummarizeClause struct {
	Pos   Pos
	Items []Assign
	By    []*FieldRef
}

// ListClause is `list field[, ...]`.
type ListClause struct {
	Pos    Pos
	Fields []*FieldRef
}

// SortClause is `sort field [asc|desc]`.
type SortClause struct {
	Pos   Pos
	Field *FieldRef
	Desc  bool
}

// LimitClause is `limit N`.
type LimitClause struct {
	Pos Pos
	N   int
}

func (c *JoinClause) clausePos() Pos      { return c.Pos }
func (c *WhereClause) clausePos() Pos     { return c.Pos }
func (c *ComputeClause) clausePos() Pos   { return c.Pos }
func (c *SummarizeClause) clausePos() Pos { return c.Pos }
func (c *ListClause) clausePos() Pos      { return c.Pos }
func (c *SortClause) clausePos() Pos      { return c.Pos }
func (c *LimitClause) clausePos() Pos     { return c.Pos }

// Expr is an expression node.
type Expr interface{ exprPos() Pos }

// Binary operators: == != < <= > >= contains + - * / and or.
type Binary struct {
	Pos  Pos
	Op   string
	L, R Expr
}

// In is `x in [...]` or, with Not, `x !in [...]`.
type In struct {
	Pos   Pos
	Not   bool
	X     Expr
	Items []Expr
}

// Unary is `!x` (Op "!") or `-x` (Op "-").
type Unary struct {
	Pos Pos
	Op  string
	X   Expr
}

// Literal is a string, int64, float64, bool or nil (null) constant.
type Literal struct {
	Pos   Pos
	Value Value
}

// Param is `$name`.
type Param struct {
	Pos  Pos
	Name string
}

// FieldRef is a field name as written, short or qualified.
type FieldRef struct {
	Pos  Pos
	Name string
}

// Call is an aggregate: `field.func()` (Field set) or `func()`.
type Call struct {
	Pos   Pos
	Field *FieldRef
	Func  string
}

func (e *Binary) exprPos() Pos   { return e.Pos }
func (e *In) exprPos() Pos       { return e.Pos }
func (e *Unary) exprPos() Pos    { return e.Pos }
func (e *Literal) exprPos() Pos  { return e.Pos }
func (e *Param) exprPos() Pos    { return e.Pos }
func (e *FieldRef) exprPos() Pos { return e.Pos }
func (e *Call) exprPos() Pos     { return e.Pos }
