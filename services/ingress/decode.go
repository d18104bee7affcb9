package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// maxBody caps every request body: 1 MiB.
const maxBody = 1 << 20

// decodeJSON reads a JSON body strictly: application/json only (415), at most 1 MiB
// (413), valid UTF-8, one value, no unknown fields (400 naming the field). An empty
// body is allowed when optional is true.
func decodeJSON(w http.ResponseWriter, r *http.Request, into any, optional bool) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return problem.New(problem.Invalid, "a JSON body is required")
	}
	if ct := r.Header.Get("Content-Type"); (ct != "" || !optional) && !isJSON(ct) {
		return problem.New(problem.UnsupportedMedia, "send the body as application/json")
	}
	if !utf8.Valid(raw) {
		return problem.New(problem.Invalid, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return problem.New(problem.Invalid, "the body holds more than one JSON value")
	}
	return nil
}

// declaredTooLarge refuses at once a body declared larger than maxBody, rather than
// wait for a body that will not be read.
func declaredTooLarge(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > maxBody {
		w.Header().Set("Connection", "close")
		return problem.New(problem.PayloadTooLarge, "the body is larger than %d bytes", maxBody)
	}
	return nil
}

// readBody reads a request body of at most maxBody bytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := declaredTooLarge(w, r); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, problem.New(problem.PayloadTooLarge, "the body is larger than %d bytes", maxBody)
	}
	if err != nil {
		return nil, problem.Wrap(problem.Invalid, err, "the body could not be read")
	}
	return raw, nil
}

// isJSON reports whether a Content-Type is JSON (application/json or +json).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// jsonProblem names the field a decoding error is about.
func jsonProblem(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return problem.InvalidField(field, "want %s, got JSON %s", typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return problem.New(problem.Invalid, "malformed JSON at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem.InvalidField(field, "unknown field %q", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(problem.Invalid, "the JSON body ends too early")
	}
	return problem.Wrap(problem.Invalid, err, fmt.Sprintf("malformed JSON: %v", err))
}
