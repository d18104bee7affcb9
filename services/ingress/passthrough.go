package ingress

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
)

// The identification answer is most of the API's traffic, and its devices (twice:
// the list and per person) most of its bytes. Decoding the worker's reply into Go
// values only to encode them again cost the ingress more CPU than anything else on
// the path, so the answer is assembled from the reply's own JSON: the worker encoded
// it with encoding/json, the same encoder that would encode it here, so the bytes
// are those the decode and encode would give. A reply that does not have the shape
// expected takes the decoding path.

// errShape says a reply is not the JSON object expected.
var errShape = errors.New("unexpected reply shape")

// members calls f with each member of the JSON object data: its key (which must be
// plain, without escapes) and its raw value. It finds the members' extents only; it
// does not validate the values, which the caller checks for the kinds it expects.
func members(data []byte, f func(key string, value []byte)) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errShape
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return errShape
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return errShape
		}
		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return errShape
		}
		i = skipSpace(data, i+end+2)
		if i >= len(data) || data[i] != ':' {
			return errShape
		}
		i = skipSpace(data, i+1)
		n := valueEnd(data, i)
		if n <= i {
			return errShape
		}
		f(string(key), data[i:n])
		i = skipSpace(data, n)
		switch {
		case i >= len(data):
			return errShape
		case data[i] == ',':
			i = skipSpace(data, i+1)
		case data[i] == '}':
			return trailing(data, i+1)
		default:
			return errShape
		}
	}
}

func trailing(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return errShape
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t') {
		i++
	}
	return i
}

// valueEnd is the index just past the JSON value starting at i (i itself when there
// is none): a string, an array or object (brackets matched outside strings), or a
// literal up to the next delimiter.
func valueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		var open [64]byte
		stack := open[:0] // the closing brackets expected, innermost last
		for j := i; j < len(data); j++ {
			switch c := data[j]; c {
			case '"':
				e := stringEnd(data, j)
				if e <= j {
					return i
				}
				j = e - 1
			case '{', '[':
				stack = append(stack, c+2) // '}' is '{'+2, ']' is '['+2
			case '}', ']':
				if stack[len(stack)-1] != c {
					return i
				}
				if stack = stack[:len(stack)-1]; len(stack) == 0 {
					return j + 1
				}
			}
		}
		return i
	}
	j := i
	for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' && data[j] != ' ' && data[j] != '\n' && data[j] != '\r' && data[j] != '\t' {
		j++
	}
	return j
}

// stringEnd is the index just past the JSON string starting at i (a quote), or i
// when it does not end.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return i
}

// identifyAnswer is GET /api/v1/devices's body (api.Devices, its members in the
// order encoding/json writes them) from the worker's events.DevicesIdentifyReply.
func identifyAnswer(reply []byte) ([]byte, error) {
	var ambiguous, asOf, devices, people, source []byte
	err := members(reply, func(key string, v []byte) {
		switch key {
		case "ambiguous":
			ambiguous = v
		case "data_as_of":
			asOf = v
		case "devices":
			devices = v
		case "people":
			people = v
		case "source":
			source = v
		}
	})
	switch {
	case err != nil:
		return nil, err
	case !isLiteral(ambiguous, "true") && !isLiteral(ambiguous, "false") && ambiguous != nil:
		return nil, errShape
	case asOf != nil && !isLiteral(asOf, "null") && asOf[0] != '"':
		return nil, errShape
	case source == nil || source[0] != '"':
		return nil, errShape
	case devices != nil && !isLiteral(devices, "null") && devices[0] != '[':
		return nil, errShape
	case people != nil && !isLiteral(people, "null") && people[0] != '[':
		return nil, errShape
	}
	if ambiguous == nil {
		ambiguous = []byte("false")
	}
	if asOf == nil {
		asOf = []byte("null")
	}
	if devices == nil || isLiteral(devices, "null") {
		devices = []byte("[]")
	}
	if isLiteral(people, "null") || isLiteral(people, "[]") {
		people = nil // omitempty
	}
	b := make([]byte, 0, len(reply)+16)
	b = append(b, `{"ambiguous":`...)
	b = append(b, ambiguous...)
	b = append(b, `,"data_as_of":`...)
	b = append(b, asOf...)
	b = append(b, `,"devices":`...)
	b = append(b, devices...)
	if people != nil {
		b = append(b, `,"people":`...)
		b = append(b, people...)
	}
	b = append(b, `,"source":`...)
	b = append(b, source...)
	b = append(b, "}\n"...) // as json.Encoder ends a value
	return b, nil
}

func isLiteral(v []byte, lit string) bool { return string(v) == lit }

// writeRawJSON answers status with body, JSON already encoded.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
