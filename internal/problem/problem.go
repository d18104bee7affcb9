// Package problem is dexbridge's error vocabulary: a stable machine code for each kind
// of failure, mapped once to an HTTP status, and the RFC 9457 document the REST API
// returns. Workers return *Error values; the NATS reply carries the code and the
// document, so the ingress renders the same answer whichever process failed.
package problem

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Code is a stable machine code; docs/errors.md explains each one under its own anchor.
type Code string

const (
	Invalid              Code = "invalid_request"
	Unauthorized         Code = "unauthorized"
	Forbidden            Code = "forbidden"
	NotFound             Code = "not_found"
	Conflict             Code = "conflict"
	Unprocessable        Code = "unprocessable"
	PayloadTooLarge      Code = "payload_too_large"
	UnsupportedMedia     Code = "unsupported_media_type"
	RateLimited          Code = "rate_limited"
	UpstreamUnavailable  Code = "upstream_unavailable"
	Timeout              Code = "timeout"
	Internal             Code = "internal"
	MethodNotAllowed     Code = "method_not_allowed"
	NotAcceptable        Code = "not_acceptable"
	ServiceUnavailable   Code = "service_unavailable"
	UnsupportedOperation Code = "unsupported_operation"
	// DelegateForbidden refuses a delegate key what lies outside its employee.
	DelegateForbidden Code = "delegate_forbidden"
)

var statuses = map[Code]int{
	Invalid:              http.StatusBadRequest,
	Unauthorized:         http.StatusUnauthorized,
	Forbidden:            http.StatusForbidden,
	NotFound:             http.StatusNotFound,
	Conflict:             http.StatusConflict,
	Unprocessable:        http.StatusUnprocessableEntity,
	PayloadTooLarge:      http.StatusRequestEntityTooLarge,
	UnsupportedMedia:     http.StatusUnsupportedMediaType,
	RateLimited:          http.StatusTooManyRequests,
	UpstreamUnavailable:  http.StatusServiceUnavailable,
	Timeout:              http.StatusGatewayTimeout,
	Internal:             http.StatusInternalServerError,
	MethodNotAllowed:     http.StatusMethodNotAllowed,
	NotAcceptable:        http.StatusNotAcceptable,
	ServiceUnavailable:   http.StatusServiceUnavailable,
	UnsupportedOperation: http.StatusNotImplemented,
	DelegateForbidden:    http.StatusForbidden,
}

var titles = map[Code]string{
	Invalid:              "Invalid request",
	Unauthorized:         "Unauthorized",
	Forbidden:            "Forbidden",
	NotFound:             "Not found",
	Conflict:             "Conflict",
	Unprocessable:        "Unprocessable request",
	PayloadTooLarge:      "Payload too large",
	UnsupportedMedia:     "Unsupported media type",
	RateLimited:          "Too many requests",
	UpstreamUnavailable:  "Upstream unavailable",
	Timeout:              "Timeout",
	Internal:             "Internal error",
	MethodNotAllowed:     "Method not allowed",
	NotAcceptable:        "Not acceptable",
	ServiceUnavailable:   "Service unavailable",
	UnsupportedOperation: "Not implemented",
	DelegateForbidden:    "Outside the delegate's employee",
}

// Codes lists every code, for documentation and tests.
func Codes() []Code {
	out := make([]Code, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status of a code; unknown codes are 500.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Title is the short human summary of a code.
func (c Code) Title() string {
	if t, ok := titles[c]; ok {
		return t
	}
	return titles[Internal]
}

// Valid reports whether c is one of the documented codes.
func (c Code) Valid() bool { _, ok := statuses[c]; return ok }

// Error is a classified failure. Detail is shown to API clients, so it must never hold
// secrets, SQL or upstream URLs; Err is the wrapped cause, kept for logs only.
type Error struct {
	Code       Code
	Detail     string
	Field      string        // the offending field, for validation errors
	RetryAfter time.Duration // for rate_limited and unavailable answers
	Limit      float64       // for rate_limited: the limit, in requests per second
	Err        error
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of code c with a formatted detail.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// Wrap classifies err as c with a client-safe detail; err itself is kept for logs.
func Wrap(c Code, err error, detail string) *Error {
	return &Error{Code: c, Detail: detail, Err: err}
}

// InvalidField is a validation error naming the offending field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Retry returns a copy of e that tells the client when to retry.
func (e *Error) Retry(after time.Duration) *Error {
	c := *e
	c.RetryAfter = after
	return &c
}

// Unavailable is an error that says whether a dependency could not be reached (the
// database's connection failures say so): From answers it 503 with Retry-After.
type Unavailable interface {
	Unavailable() bool
}

// From classifies any error: an *Error anywhere in the chain is returned as is;
// context deadlines become timeout; an Unavailable dependency becomes
// service_unavailable; everything else is internal.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var p *Error
	if errors.As(err, &p) {
		return p
	}
	if errors.Is(err, contextDeadline) {
		return &Error{Code: Timeout, Detail: "the request took too long", Err: err}
	}
	var u Unavailable
	if errors.As(err, &u) && u.Unavailable() {
		return &Error{Code: ServiceUnavailable, Detail: "a service dexbridge depends on is unavailable right now; try again shortly",
			RetryAfter: time.Second, Err: err}
	}
	return &Error{Code: Internal, Detail: "an internal error occurred", Err: err}
}

// CodeOf is the code of err (internal for unclassified errors, "" for nil).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}
