package cli

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Retries of a refused request: dexbridge says when to come back (Retry-After); the
// command does so a few times, and only for waits it can sit through.
const (
	maxRetries    = 3
	maxRetryAfter = 30 * time.Second
)

// transport sends the client commands' requests: it honours Retry-After on 429
// (and on 503 where repeating the request is safe) a bounded number of times, and
// traces each exchange on -v without the key.
type transport struct {
	next    http.RoundTripper
	trace   io.Writer // -v; nil traces nothing
	notices io.Writer // what the user is told about a retry
	retries int
	maxWait time.Duration
	now     func() time.Time
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		t.traceRequest(req)
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			if t.trace != nil {
				fmt.Fprintf(t.trace, "< %s %s: %v\n", req.Method, req.URL.Redacted(), err)
			}
			return nil, err
		}
		t.traceResponse(resp, time.Since(start))
		wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.now())
		if !ok || !retryable(req, resp.StatusCode) || attempt >= t.retries || (req.Body != nil && req.GetBody == nil) {
			return resp, nil
		}
		if wait > t.maxWait {
			fmt.Fprintf(t.notices, "dexbridge asks to retry in %s, longer than this command waits (%s): not retrying\n", wait, t.maxWait)
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		fmt.Fprintf(t.notices, "%s: retrying in %s as asked (retry %d of %d)\n", http.StatusText(resp.StatusCode), wait, attempt+1, t.retries)
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
		next := req.Clone(req.Context())
		if req.GetBody != nil {
			if next.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		req = next
	}
}

// retryable: a 429 was refused before anything was done, so it may always be sent
// again; a 503 may come after work started, so only reads and requests with an
// Idempotency-Key are repeated.
func retryable(req *http.Request, status int) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return req.Method == http.MethodGet || req.Method == http.MethodHead || req.Header.Get("Idempotency-Key") != ""
	}
	return false
}

// parseRetryAfter reads Retry-After (RFC 9110 section 10.2.3): seconds, or an HTTP
// date (a date in the past is no wait).
func parseRetryAfter(s string, now time.Time) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, true
	}
	at, err := http.ParseTime(s)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// traceHeaders are never shown: they hold credentials.
var traceHidden = map[string]bool{"X-Api-Key": true, "Authorization": true, "Cookie": true}

func (t *transport) traceRequest(req *http.Request) {
	if t.trace == nil {
		return
	}
	fmt.Fprintf(t.trace, "> %s %s\n", req.Method, req.URL.Redacted())
	t.traceHeaders(">", req.Header)
}

func (t *transport) traceResponse(resp *http.Response, took time.Duration) {
	if t.trace == nil {
		return
	}
	fmt.Fprintf(t.trace, "< %s in %s\n", resp.Status, took.Round(time.Millisecond))
	t.traceHeaders("<", resp.Header)
}

func (t *transport) traceHeaders(dir string, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.Join(h[k], ", ")
		if traceHidden[http.CanonicalHeaderKey(k)] {
			v = redacted
		}
		fmt.Fprintf(t.trace, "%s %s: %s\n", dir, k, v)
	}
}
