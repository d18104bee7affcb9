package nxql

import "fmt"

// Error is a query the Engine refuses: where (1-based line and column), why, and,
// for an unknown name, the names it would have accepted (an Engine lists them as
// "error options").
type Error struct {
	Pos     Pos
	Msg     string
	Options []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("NXQL error at line %d, column %d: %s", e.Pos.Line, e.Pos.Column, e.Msg)
}

func errorAt(p Pos, format string, args ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, args...)}
}
