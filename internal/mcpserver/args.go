package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// maxArgs caps a tool call's arguments: every tool takes a few short strings.
const maxArgs = 64 << 10

// decodeArgs reads a tool call's arguments into the tool's input type strictly: one
// JSON object (absent or null is an empty one), valid UTF-8, at most maxArgs bytes,
// no unknown member, each member of its type. Errors are problems naming the field,
// as the REST API's are; the values themselves are checked by the REST handlers.
func decodeArgs(raw json.RawMessage, into any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if len(raw) > maxArgs {
		return problem.New(problem.PayloadTooLarge, "the arguments are larger than %d bytes", maxArgs)
	}
	if !utf8.Valid(raw) {
		return problem.New(problem.Invalid, "the arguments are not valid UTF-8")
	}
	if raw[0] != '{' {
		return problem.New(problem.Invalid, "the arguments must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return argsProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(problem.Invalid, "the arguments hold more than one JSON value")
	}
	return nil
}

// argsProblem names the argument a decoding error is about.
func argsProblem(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := argName(typeErr.Field)
		if field == "" {
			field = "(arguments)"
		}
		return problem.InvalidField(field, "want %s, got JSON %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return problem.New(problem.Invalid, "malformed JSON arguments at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem.InvalidField(field, "unknown argument %q", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(problem.Invalid, "the JSON arguments end too early")
	}
	return problem.New(problem.Invalid, "malformed JSON arguments")
}

// argName drops from a decoding error's field path the Go names of embedded structs
// (the REST bodies the arguments embed): the arguments' own names are lower case.
func argName(path string) string {
	var kept []string
	for part := range strings.SplitSeq(path, ".") {
		if part != "" && !unicode.IsUpper(rune(part[0])) {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, ".")
}

// jsonType names a Go kind as JSON Schema does, for the model reading the error.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32":
		return "an integer"
	case "float64":
		return "a number"
	case "ptr":
		return "a value of the argument's type"
	}
	return "a JSON " + kind
}
