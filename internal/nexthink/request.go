package nexthink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	maxErrorBody    = 64 << 10  // bytes of an error answer read for its message
	maxAnswerBody   = 256 << 20 // bytes of a JSON answer (execute caps at 1000 rows)
	jsonContentType = "application/json"
)

// request is one API call, before retries.
type request struct {
	call    string     // "nql.execute"
	method  string     // "POST"
	path    string     // "/api/v2/nql/execute", appended to the API URL
	query   url.Values // nil for none
	body    any        // JSON body; nil for none
	target  string     // query or remote action id, for errors
	limiter Limiter
	policy  retryPolicy
	utc     bool // NQL: ask for UTC date-times (x-utc-times: true)
}

func (r request) endpoint() string { return r.method + " " + r.path }

// attempt makes one try of req: limiter, token, HTTP. On a 2xx answer it decodes the
// JSON body into out (when not nil) and returns the status.
func (c *Client) attempt(ctx context.Context, req request, body []byte, n int, out any) (status int, e *Error) {
	probe, e := c.pass(ctx, req.call, req.target)
	if e != nil {
		return 0, e
	}
	defer func() { c.gate.done(e, probe, time.Now()) }()
	return c.try(ctx, req, body, n, out)
}

// try is one attempt past the gate: limiter, token, HTTP.
func (c *Client) try(ctx context.Context, req request, body []byte, n int, out any) (int, *Error) {
	if e := c.take(ctx, req.limiter, req.call); e != nil {
		e.Target = req.target
		return 0, e
	}
	tok, terr := c.tokens.get(ctx)
	if terr != nil {
		e := *terr // shared by the callers of one fetch
		e.unsent = true
		return 0, &e
	}
	actx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	u := c.apiURL.JoinPath(req.path)
	u.RawQuery = req.query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(actx, req.method, u.String(), rd)
	if err != nil {
		return 0, &Error{Instance: c.name, Call: req.call, Target: req.target, Code: CodeInvalid, Message: "cannot build the request"}
	}
	hreq.Header.Set("Authorization", "Bearer "+tok)
	hreq.Header.Set("Accept", jsonContentType)
	if req.utc {
		hreq.Header.Set("x-utc-times", "true")
	}
	if body != nil {
		hreq.Header.Set("Content-Type", jsonContentType)
	}
	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		c.record(req.call, req.endpoint(), 0, time.Since(start), n)
		e := c.transportError(ctx, req.call, req.target, err)
		e.unsent = isDialError(err)
		return 0, e
	}
	defer drain(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		c.record(req.call, req.endpoint(), resp.StatusCode, time.Since(start), n)
		if resp.StatusCode == http.StatusUnauthorized {
			c.tokens.drop(tok)
		}
		return resp.StatusCode, c.statusError(req.call, req.target, resp.StatusCode, retryAfter(resp.Header, time.Now()), b)
	}
	if out != nil {
		if err := jsonDecode(io.LimitReader(resp.Body, maxAnswerBody), out); err != nil {
			c.record(req.call, req.endpoint(), resp.StatusCode, time.Since(start), n)
			if ctx.Err() != nil || actx.Err() != nil {
				return 0, c.transportError(ctx, req.call, req.target, err)
			}
			return resp.StatusCode, &Error{Instance: c.name, Call: req.call, Target: req.target, Status: resp.StatusCode,
				Code: CodeBadResponse, Message: "the answer is not the expected JSON", Err: err}
		}
	}
	c.record(req.call, req.endpoint(), resp.StatusCode, time.Since(start), n)
	return resp.StatusCode, nil
}

// record logs an attempt at debug level and reports it to Observe.
func (s *shared) record(call, endpoint string, status int, d time.Duration, attempt int) {
	s.log.Debug("nexthink call", "call", call, "status", status, "duration_ms", d.Milliseconds(), "attempt", attempt)
	if s.observe != nil {
		s.observe(Call{Instance: s.name, Name: call, Endpoint: endpoint, Status: status, Duration: d, Attempt: attempt})
	}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date; 0 when absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// drain reads what is left of a body (so the connection is reused) and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}

// jsonDecode decodes one JSON value, numbers as json.Number.
func jsonDecode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return dec.Decode(v)
}

func jsonUnmarshal(b []byte, v any) error { return jsonDecode(bytes.NewReader(b), v) }

// isDialError reports whether err happened before a connection was made, so the
// request certainly did not reach the instance.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
