package nexthinkv6

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
)

const (
	maxErrorBody  = 64 << 10
	maxAnswerBody = 256 << 20
)

// retryPolicy says which failures of a call may be retried.
type retryPolicy int

const (
	retryReads  retryPolicy = iota // every transient failure
	retryUnsent                    // only what certainly did not run: a run starts remote actions
)

// httpCall is one call, before retries.
type httpCall struct {
	name    string // "nxql.query"
	method  string
	url     string
	form    url.Values // sent as the body of a POST, or the query of a GET
	json    []byte     // a JSON body (the run)
	target  string     // the query or remote action id, for errors
	limiter nexthink.Limiter
	engine  *engineState // nil for the Portal
	policy  retryPolicy
	// stream: a 2xx answer's body is handed over unread (Driver.doStream);
	// CallTimeout then bounds the wait for its headers only.
	stream bool
}

// portalCall calls the Portal.
func (d *Driver) portalCall(ctx context.Context, name, method, path string, body []byte, p retryPolicy) ([]byte, *nexthink.Error) {
	return d.do(ctx, httpCall{name: name, method: method, url: d.portal.JoinPath(path).String(), json: body,
		limiter: d.cfg.PortalLimiter, policy: p})
}

// do runs c with retries of transient failures within RetryFor and ctx's
// deadline; an Engine marked down ends the retries at once.
func (d *Driver) do(ctx context.Context, c httpCall) ([]byte, *nexthink.Error) {
	body, _, e := d.retried(ctx, c)
	return body, e
}

// doStream is do for a streamed answer: the caller reads and closes its body.
// Only the call's start is retried; a failure while reading is the caller's.
func (d *Driver) doStream(ctx context.Context, c httpCall) (io.ReadCloser, *nexthink.Error) {
	c.stream = true
	_, rc, e := d.retried(ctx, c)
	return rc, e
}

func (d *Driver) retried(ctx context.Context, c httpCall) ([]byte, io.ReadCloser, *nexthink.Error) {
	start := time.Now()
	wait := 250 * time.Millisecond
	for n := 1; ; n++ {
		body, rc, e := d.attempt(ctx, c, n)
		if e == nil {
			return body, rc, nil
		}
		if !d.retryable(e, c.policy) || (c.engine != nil && d.isDown(c.engine)) {
			return nil, nil, e
		}
		w := max(wait/2+rand.N(wait), e.RetryAfter)
		if time.Since(start)+w > d.retryFor || (e.Status == http.StatusTooManyRequests && e.RetryAfter > d.maxWait) {
			return nil, nil, e
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(w).After(deadline) {
			return nil, nil, e
		}
		d.log.Warn("nexthink v6 call failed, retrying", "call", c.name, "status", e.Status, "code", e.Code, "attempt", n)
		t := time.NewTimer(w)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, d.ctxError(ctx, c)
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (d *Driver) retryable(e *nexthink.Error, p retryPolicy) bool {
	switch e.Code {
	case nexthink.CodeRateLimited:
		// A shared limiter may refuse a caller briefly for fairness: a refusal due
		// within MaxWait is waited for.
		return e.RetryAfter > 0 && e.RetryAfter <= d.maxWait
	case nexthink.CodeLimiterFailed, nexthink.CodeInvalid, nexthink.CodeCanceled,
		nexthink.CodeBadResponse, nexthink.CodeUnavailable:
		return false
	}
	if p == retryUnsent {
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable ||
			(e.Code == nexthink.CodeTransport && isDialError(e.Err))
	}
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// attempt makes one try: limiter, HTTP, status. Engine calls count toward the
// Engine's health.
func (d *Driver) attempt(ctx context.Context, c httpCall, n int) (body []byte, rc io.ReadCloser, e *nexthink.Error) {
	if e := d.take(ctx, c); e != nil {
		return nil, nil, e
	}
	if c.engine != nil {
		defer func() {
			switch {
			case ctx.Err() != nil:
				// The caller left or its deadline passed: that says nothing of the Engine.
			case e == nil:
				d.succeeded(c.engine)
			case e.Code == nexthink.CodeCanceled || (e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests):
				// The caller left, or the query was refused: the Engine answered.
				if e.Status != 0 {
					d.succeeded(c.engine)
				}
			default:
				d.failed(c.engine, e)
			}
		}()
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	if c.stream {
		// A streamed answer may take longer than CallTimeout to read: the timeout
		// bounds the wait for its headers, the caller's context the rest.
		cancel()
		var stop context.CancelFunc
		actx, stop = context.WithCancel(ctx)
		headers := time.AfterFunc(d.cfg.CallTimeout, stop)
		cancel = func() { headers.Stop(); stop() }
	}
	handedOver := false
	defer func() {
		if !handedOver {
			cancel()
		}
	}()
	var rd io.Reader
	u := c.url
	ctype := ""
	switch {
	case c.json != nil:
		rd, ctype = bytes.NewReader(c.json), "application/json"
	case c.method == http.MethodPost:
		rd, ctype = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	case c.form != nil:
		u += "?" + c.form.Encode()
	}
	req, err := http.NewRequestWithContext(actx, c.method, u, rd)
	if err != nil {
		return nil, nil, d.err(c, 0, nexthink.CodeInvalid, "cannot build the request", nil)
	}
	req.SetBasicAuth(d.cfg.Username, d.cfg.Password.Reveal())
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	began := time.Now()
	resp, err := d.http.Do(req)
	if err != nil {
		d.observe(c, 0, time.Since(began), n)
		if ctx.Err() != nil {
			return nil, nil, d.ctxError(ctx, c)
		}
		code := nexthink.CodeTransport
		if actx.Err() != nil {
			code = nexthink.CodeTimeout
		}
		ne := d.err(c, 0, code, "no answer", err)
		if c.policy == retryUnsent && !isDialError(err) {
			ne.Message = "no answer: the call may have run"
		}
		return nil, nil, ne
	}
	if c.stream && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		d.observe(c, resp.StatusCode, time.Since(began), n)
		handedOver = true
		return nil, &streamBody{ReadCloser: resp.Body, cancel: cancel}, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		d.observe(c, resp.StatusCode, time.Since(began), n)
		ne := d.err(c, resp.StatusCode, "", errorMessage(b), nil)
		ne.Code = errorCode(b, resp.StatusCode)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ne.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, nil, ne
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	d.observe(c, resp.StatusCode, time.Since(began), n)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, d.ctxError(ctx, c)
		}
		return nil, nil, d.err(c, 0, nexthink.CodeTransport, "the answer broke off", err)
	}
	return b, nil, nil
}

// streamBody is a streamed answer's body; closing it ends its request.
type streamBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *streamBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// take waits for the call's limiter within MaxWait, or fails as rate limited.
func (d *Driver) take(ctx context.Context, c httpCall) *nexthink.Error {
	limit := d.maxWait
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(deadline))
	}
	w, err := c.limiter.Take(ctx, max(limit, 0))
	var limited *ratelimit.Limited
	switch {
	case err == nil && w <= limit:
	case err == nil, errors.As(err, &limited):
		if limited != nil {
			w = limited.RetryAfter
		}
		e := d.err(c, 0, nexthink.CodeRateLimited, "dexbridge's rate limit for this "+d.what(c)+" is reached", err)
		e.RetryAfter = w
		return e
	case ctx.Err() != nil:
		return d.ctxError(ctx, c)
	default:
		return d.err(c, 0, nexthink.CodeLimiterFailed, "the rate limiter failed", err)
	}
	if w > 0 {
		t := time.NewTimer(w)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return d.ctxError(ctx, c)
		case <-t.C:
		}
	}
	return nil
}

func (d *Driver) what(c httpCall) string {
	if c.engine != nil {
		return "Engine"
	}
	return "Portal"
}

// err builds an error naming the instance, and the Engine in the call's name
// ("nxql.query on engine-2"), so a chatbot's detail says which one failed.
func (d *Driver) err(c httpCall, status int, code, msg string, cause error) *nexthink.Error {
	name := c.name
	if c.engine != nil {
		name += " on " + c.engine.Name
	}
	return &nexthink.Error{Instance: d.cfg.Instance, Call: name, Target: c.target, Status: status, Code: code, Message: msg, Err: cause}
}

func (d *Driver) ctxError(ctx context.Context, c httpCall) *nexthink.Error {
	code := nexthink.CodeCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = nexthink.CodeTimeout
	}
	return d.err(c, 0, code, "the caller's deadline passed", ctx.Err())
}

func (d *Driver) observe(c httpCall, status int, took time.Duration, n int) {
	if d.cfg.Observe == nil {
		return
	}
	endpoint := c.method + " " + c.url
	if u, err := url.Parse(c.url); err == nil {
		endpoint = c.method + " " + u.Path
	}
	d.cfg.Observe(nexthink.Call{Instance: d.cfg.Instance, Name: c.name, Endpoint: endpoint, Status: status, Duration: took, Attempt: n})
}

var (
	htmlMessage = regexp.MustCompile(`(?s)id="error_message"[^>]*>(.*?)<`)
	jsonCode    = regexp.MustCompile(`"code"\s*:\s*"([A-Za-z0-9_]{1,64})"`)
	jsonMessage = regexp.MustCompile(`"message"\s*:\s*"((?:[^"\\]|\\.){0,500})"`)
)

// errorMessage reads an Engine's HTML error page (element error_message) or the
// Portal's JSON error ({"code","message"}); it is cut to 300 characters.
func errorMessage(b []byte) string {
	msg := ""
	if m := htmlMessage.FindSubmatch(b); m != nil {
		msg = html.UnescapeString(string(m[1]))
	} else if m := jsonMessage.FindSubmatch(b); m != nil {
		if s, err := strconv.Unquote(`"` + string(m[1]) + `"`); err == nil {
			msg = s
		}
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

func errorCode(b []byte, status int) string {
	if m := jsonCode.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return strconv.Itoa(status)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
