package nexthink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	callExport       = "nql.export"
	callExportStatus = "nql.export.status"
	callExportFile   = "nql.export.download"
	exportCompressed = "GZIP"
)

// CodePartial is the code of an export the instance cut short (status 206, licence
// limit): every row of the file was delivered, but the result is incomplete.
const CodePartial = "partial"

// ErrPartial is wrapped by the error of an export that the instance cut short; the
// rows it delivered are a prefix of the result, so do not prune on them.
var ErrPartial = errors.New("the instance cut the export short (licence limit)")

// exportStatus is the NqlApiStatusResponse schema.
type exportStatus struct {
	Status           string `json:"status"`
	ResultsFileURL   string `json:"resultsFileUrl"`
	ErrorDescription string `json:"errorDescription"`
}

// Export runs a saved query with the NQL export API: it submits the export (GZIP),
// polls its status (more often while it is young) until COMPLETED or ERROR (within ExportTimeout), then
// downloads the results file without the bearer token and decodes it as it arrives,
// calling fn with the header and each record in order. The file is never held in
// memory. header is the same slice on every call (do not change it); record is new
// on every call. The cells of the schema's date-time fields are RFC 3339 UTC
// (FormatTime); empty cells are empty.
//
// An error of fn stops the export and is returned wrapped. When the instance cut the
// result short (206), every row is delivered and the error wraps ErrPartial.
func (c *Client) Export(ctx context.Context, queryID string, params map[string]string, fn func(header, record []string) error) error {
	return c.ExportStream(ctx, queryID, params, nil, fn)
}

// ExportStream is Export that also calls ready, when not nil, once the export has
// completed and before its results file is downloaded, with whether the instance
// cut the result short: a caller streaming the rows on can say so before the first
// one. An error of ready stops the export and is returned wrapped.
func (c *Client) ExportStream(ctx context.Context, queryID string, params map[string]string, ready func(partial bool) error,
	fn func(header, record []string) error) error {
	if err := c.checkQueryID(callExport, queryID); err != nil {
		return err
	}
	start := time.Now()
	var sub struct {
		ExportID string `json:"exportId"`
	}
	if _, err := c.do(ctx, request{call: callExport, method: http.MethodPost, path: "/api/v1/nql/export",
		body: nqlRequest{QueryID: queryID, Parameters: params, Compression: exportCompressed}, target: queryID,
		limiter: c.nql, policy: retryReads, utc: true}, &sub); err != nil {
		return err
	}
	if sub.ExportID == "" {
		return &Error{Instance: c.name, Call: callExport, Target: queryID, Code: CodeBadResponse, Message: "the answer holds no exportId"}
	}
	fileURL, partial, err := c.waitExport(ctx, queryID, sub.ExportID)
	if err != nil {
		return err
	}
	if ready != nil {
		if err := ready(partial); err != nil {
			return fmt.Errorf("nexthink instance %s: %s %s: %w", c.name, callExport, queryID, err)
		}
	}
	rows, err := c.download(ctx, queryID, fileURL, c.times.records(fn))
	c.log.Info("nexthink export done", "call", callExport, "query_id", queryID, "rows", rows,
		"partial", partial, "ok", err == nil, "duration_ms", time.Since(start).Milliseconds())
	if err != nil {
		return err
	}
	if partial {
		return &Error{Instance: c.name, Call: callExportStatus, Target: queryID, Status: http.StatusPartialContent,
			Code: CodePartial, Message: ErrPartial.Error(), Err: ErrPartial}
	}
	return nil
}

// The bounds of the time between two polls of an export's status.
const (
	exportPollMin = 200 * time.Millisecond
	exportPollMax = 5 * time.Second
)

// waitExport polls the status of an export until it is COMPLETED (returning the
// results file URL and whether the result was cut short) or ERROR. A poll the limiter
// refuses is skipped, not fatal: the export keeps running meanwhile.
func (c *Client) waitExport(ctx context.Context, queryID, exportID string) (string, bool, error) {
	start := time.Now()
	for {
		var st exportStatus
		status, err := c.do(ctx, request{call: callExportStatus, method: http.MethodGet,
			path: "/api/v1/nql/status/" + url.PathEscape(exportID), target: queryID, limiter: c.nql, policy: retryReads, utc: true}, &st)
		var e *Error
		// The next poll comes a tenth of the time waited so far later, within
		// [exportPollMin, exportPollMax]: an export is seen ready at most about a
		// tenth of its duration after it is (an exponential backoff by 1.5 could
		// see it a third late), for a number of polls growing with the log of
		// the duration up to the cap.
		wait := min(max(time.Since(start)/10, exportPollMin), exportPollMax)
		switch {
		case errors.As(err, &e) && e.Code == CodeRateLimited:
			wait = max(wait, e.RetryAfter)
		case err != nil:
			return "", false, err
		case st.Status == "COMPLETED":
			if st.ResultsFileURL == "" {
				return "", false, &Error{Instance: c.name, Call: callExportStatus, Target: queryID, Status: status,
					Code: CodeBadResponse, Message: "the export is completed but has no resultsFileUrl"}
			}
			return st.ResultsFileURL, status == http.StatusPartialContent, nil
		case st.Status == "ERROR":
			return "", false, &Error{Instance: c.name, Call: callExportStatus, Target: queryID, Status: status,
				Code: CodeExportFailed, Message: clean(st.ErrorDescription, 300)}
		case st.Status != "SUBMITTED" && st.Status != "IN_PROGRESS":
			return "", false, &Error{Instance: c.name, Call: callExportStatus, Target: queryID, Status: status,
				Code: CodeBadResponse, Message: "unknown export status " + clean(st.Status, 32)}
		}
		if time.Since(start)+wait > c.exportTimeout {
			return "", false, &Error{Instance: c.name, Call: callExportStatus, Target: queryID, Code: CodeExportFailed,
				Message: fmt.Sprintf("the export did not complete within %s", c.exportTimeout)}
		}
		if err := sleep(ctx, wait); err != nil {
			e := c.ctxError(ctx, callExportStatus, err)
			e.Target = queryID
			return "", false, e
		}
	}
}
