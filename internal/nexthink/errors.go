package nexthink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Codes of failures that carry no upstream error code.
const (
	CodeRateLimited   = "rate_limited"   // refused by dexbridge's own limiter; no call was made
	CodeLimiterFailed = "limiter_failed" // the limiter itself failed; no call was made
	CodeInvalid       = "invalid"        // refused before the call: bad query id, too many devices, ...
	CodeTransport     = "transport"      // no answer: connection refused or reset, DNS, TLS
	CodeTimeout       = "timeout"        // the attempt timed out waiting for the instance
	CodeCanceled      = "canceled"       // the caller's context ended
	CodeBadResponse   = "bad_response"   // an answer dexbridge could not read
	CodeExportFailed  = "export_failed"  // the export ended in ERROR or took too long
	CodeUnavailable   = "unavailable"    // not called: the instance failed its last calls or asked to wait (see gate)
)

// Error is a failed call to an instance. Its text names the instance and the call and
// never holds credentials, tokens or URLs.
type Error struct {
	Instance   string
	Call       string        // "nql.execute", "nql.export", "act.execute", "oauth.token", ...
	Target     string        // the query or remote action id, when there is one
	Status     int           // HTTP status of the last answer; 0 when there was none
	Code       string        // upstream error code ("404", "INVALID_DEVICES", "invalid_client") or one of the Code constants
	Message    string        // upstream or local message, safe to log
	RetryAfter time.Duration // when the call may succeed again (Retry-After, limiter wait)
	Err        error         // the cause, when there is one

	unsent bool // the request certainly did not reach the instance
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nexthink instance %s: %s", e.Instance, e.Call)
	if e.Target != "" {
		b.WriteString(" " + e.Target)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" && e.Code != strconv.Itoa(e.Status) {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil && (e.Status == 0 || e.Code == CodeBadResponse) {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// NotRun reports whether the failed call certainly had no effect on the instance: it
// was refused before it was sent (rate limited, invalid), it never reached the
// instance, or the instance refused it (4xx, 503). A remote-action trigger that
// failed otherwise (500, 502, 504, a timeout or a reset after it was sent) may have
// run.
func (e *Error) NotRun() bool {
	switch {
	case e.unsent:
		return true
	case e.Status == 0:
		return e.Code == CodeRateLimited || e.Code == CodeLimiterFailed || e.Code == CodeInvalid || e.Code == CodeUnavailable
	case e.Status >= 400 && e.Status < 500, e.Status == 503:
		return true
	}
	return false
}

// retryable reports whether a later attempt may succeed.
func (e *Error) retryable() bool {
	switch e.Status {
	case 429, 500, 502, 503, 504:
		return true
	}
	return e.Status == 0 && (e.Code == CodeTransport || e.Code == CodeTimeout)
}

// statusError is the error of an HTTP answer that is not a success.
func (c *shared) statusError(call, target string, status int, retryAfter time.Duration, body []byte) *Error {
	code, msg := parseErrorBody(body)
	if code == "" {
		code = strconv.Itoa(status)
	}
	return &Error{Instance: c.name, Call: call, Target: target, Status: status, Code: code,
		Message: msg, RetryAfter: retryAfter}
}

// transportError classifies a failure to get an answer. The URL is dropped from
// *url.Error: a results file URL is a credential.
func (c *shared) transportError(ctx context.Context, call, target string, err error) *Error {
	if ctx.Err() != nil {
		e := c.ctxError(ctx, call, ctx.Err())
		e.Target = target
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	code := CodeTransport
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		code = CodeTimeout
	}
	return &Error{Instance: c.name, Call: call, Target: target, Code: code, Err: err}
}

// ctxError is the error of a call whose context ended.
func (c *shared) ctxError(ctx context.Context, call string, err error) *Error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &Error{Instance: c.name, Call: call, Code: CodeCanceled, Err: err}
}

// parseErrorBody reads the code and message of the three error shapes: NQL
// {"message","code":int,"source"}, Remote Actions {"code":"...","message"} and OAuth
// {"error","error_description"}.
func parseErrorBody(body []byte) (string, string) {
	var v struct {
		Code        any    `json:"code"`
		Message     string `json:"message"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if jsonUnmarshal(body, &v) != nil {
		return "", ""
	}
	code := v.Error
	switch x := v.Code.(type) {
	case string:
		code = x
	case json.Number:
		code = x.String()
	}
	msg := v.Message
	if msg == "" {
		msg = v.Description
	}
	return clean(code, 64), clean(msg, 300)
}

// clean keeps at most n runes of s without control characters.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "..."
	}
	return s
}
