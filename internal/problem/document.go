package problem

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

var contextDeadline = context.DeadlineExceeded

// ContentType is the media type of RFC 9457 documents.
const ContentType = "application/problem+json"

// Document is the RFC 9457 body of an error answer.
type Document struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Code       Code   `json:"code"`
	Detail     string `json:"detail,omitempty"`
	Field      string `json:"field,omitempty"`
	Instance   string `json:"instance,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"` // seconds, mirrors the Retry-After header
	// Limit is the limit that refused a rate_limited request, in requests per second.
	Limit float64 `json:"limit_per_second,omitempty"`
}

// TypeBase prefixes every problem type URI: docs/errors.md in the repository has one
// anchor per code, named as the code. It is a constant, not configuration, because
// RFC 9457 makes the type an identifier that clients may compare: every deployment
// must give a code the same type.
const TypeBase = "https://github.com/dexbridge/dexbridge/blob/main/docs/errors.md#"

// Type is the problem type URI of a code: its anchor in docs/errors.md.
func (c Code) Type() string { return TypeBase + string(c) }

// Doc renders e as an RFC 9457 document. A code outside the table is rendered as
// internal, as FromDoc does, so every document points at a documented code.
func (e *Error) Doc() Document {
	c := e.Code
	if !c.Valid() {
		c = Internal
	}
	d := Document{
		Type:   c.Type(),
		Title:  c.Title(),
		Status: c.Status(),
		Code:   c,
		Detail: e.Detail,
		Field:  e.Field,
		Limit:  e.Limit,
	}
	if e.RetryAfter > 0 {
		d.RetryAfter = retrySeconds(e.RetryAfter)
	}
	return d
}

// FromDoc rebuilds an *Error from a document received over the wire; an unknown code
// becomes internal so a misbehaving peer cannot choose arbitrary statuses.
func FromDoc(d Document) *Error {
	c := d.Code
	if !c.Valid() {
		c = Internal
	}
	return &Error{Code: c, Detail: d.Detail, Field: d.Field, Limit: d.Limit, RetryAfter: time.Duration(d.RetryAfter) * time.Second}
}

// Write sends err as application/problem+json, with Retry-After where it applies.
func Write(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	p := From(err)
	d := p.Doc()
	d.Instance = r.URL.Path
	d.RequestID = requestID
	if d.RetryAfter == 0 && (p.Code == RateLimited || d.Status == http.StatusServiceUnavailable) {
		d.RetryAfter = 1
	}
	if d.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	if p.Code == RateLimited {
		// The IETF RateLimit header fields, so clients can pace themselves.
		if d.Limit > 0 {
			w.Header().Set("RateLimit-Limit", strconv.FormatFloat(d.Limit, 'f', -1, 64))
			w.Header().Set("RateLimit-Policy", strconv.FormatFloat(d.Limit, 'f', -1, 64)+";w=1")
		}
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", strconv.Itoa(d.RetryAfter))
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

func retrySeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
