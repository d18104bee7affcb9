package nexthink

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

const downloadEndpoint = "GET resultsFileUrl"

// download fetches the results file (no bearer token, no limiter), retrying until the
// body starts, and streams it to fn. It returns the number of records delivered.
func (c *Client) download(ctx context.Context, queryID, fileURL string, fn func(header, record []string) error) (int, error) {
	u, err := url.Parse(fileURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return 0, &Error{Instance: c.name, Call: callExportFile, Target: queryID, Code: CodeBadResponse,
			Message: "the resultsFileUrl is not an absolute http(s) URL"}
	}
	body, err := c.openResults(ctx, queryID, u.String())
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := decodeResults(body, fn)
	var cb callbackError
	var pe *csv.ParseError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &cb):
		return n, fmt.Errorf("nexthink instance %s: %s %s: record %d: %w", c.name, callExport, queryID, n+1, cb.err)
	case ctx.Err() != nil:
		e := c.ctxError(ctx, callExportFile, ctx.Err())
		e.Target = queryID
		return n, e
	case errors.As(err, &pe) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum):
		return n, &Error{Instance: c.name, Call: callExportFile, Target: queryID, Status: http.StatusOK, Code: CodeBadResponse,
			Message: fmt.Sprintf("the results file is not valid gzip or CSV after %d records", n), Err: err}
	}
	// The body broke off (reset, truncated gzip): rows were delivered, so no retry.
	return n, c.transportError(ctx, callExportFile, queryID, err)
}

// openResults GETs the results file until an attempt answers 200 or a failure is not
// worth retrying (403: the signed URL expired or is wrong).
func (c *Client) openResults(ctx context.Context, queryID, fileURL string) (io.ReadCloser, error) {
	bo := newBackOff()
	start := time.Now()
	for n := 1; ; n++ {
		body, e := c.openResultsOnce(ctx, queryID, fileURL, n)
		if e == nil {
			return body, nil
		}
		if !retryReads.mayRetry(e) {
			return nil, e
		}
		wait := max(bo.NextBackOff(), e.RetryAfter)
		if time.Since(start)+wait > c.retryFor {
			return nil, e
		}
		c.log.Warn("nexthink call failed, retrying", "call", callExportFile, "status", e.Status, "code", e.Code,
			"attempt", n, "retry_in_ms", wait.Milliseconds())
		if err := sleep(ctx, wait); err != nil {
			ce := c.ctxError(ctx, callExportFile, err)
			ce.Target = queryID
			return nil, ce
		}
	}
}

func (c *Client) openResultsOnce(ctx context.Context, queryID, fileURL string, n int) (io.ReadCloser, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fileURL, nil)
	if err != nil {
		return nil, &Error{Instance: c.name, Call: callExportFile, Target: queryID, Code: CodeBadResponse,
			Message: "cannot build the results file request"}
	}
	// No Authorization header: the URL is pre-signed and may point to another host.
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.record(callExportFile, downloadEndpoint, 0, time.Since(start), n)
		return nil, c.transportError(ctx, callExportFile, queryID, err)
	}
	c.record(callExportFile, downloadEndpoint, resp.StatusCode, time.Since(start), n)
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		// The body of a storage error (S3 XML) is not worth parsing.
		return nil, &Error{Instance: c.name, Call: callExportFile, Target: queryID, Status: resp.StatusCode,
			Code: fmt.Sprint(resp.StatusCode), RetryAfter: retryAfter(resp.Header, time.Now())}
	}
	return resp.Body, nil
}

// callbackError marks an error returned by the caller's function.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// decodeResults reads a results file, gzip-compressed or not (told by its first
// bytes, not by headers), as CSV with a header row, record by record. klauspost's
// gzip inflates in three quarters of the standard library's time, which took a
// sixth of discovery's CPU.
func decodeResults(r io.Reader, fn func(header, record []string) error) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		src = gz
	}
	cr := csv.NewReader(src)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return 0, nil // an empty file: no header, no rows
	}
	if err != nil {
		return 0, fmt.Errorf("header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := fn(header, rec); err != nil {
			return n, callbackError{err}
		}
		n++
	}
}
