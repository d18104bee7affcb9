package nexthink

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"time"
)

const callExecute = "nql.execute"

// queryIDRE is Nexthink's saved-query id pattern.
var queryIDRE = regexp.MustCompile(`^#[a-z0-9_]{2,255}$`)

// Result is the answer of NQL execute v2.
type Result struct {
	QueryID       string
	ExecutedQuery string    // the NQL text with the parameters substituted
	Executed      time.Time // executionDateTime, UTC
	// Rows are keyed by fully qualified field names ("device.name"). Numbers are
	// int64 when integral, else float64; null is nil; strings stay strings, except
	// that the values of the schema's date-time fields are RFC 3339 UTC text
	// (FormatTime), whatever form the instance sent.
	Rows []map[string]any
}

// MaxExecuteRows is the most rows NQL execute returns: the instance cuts a longer
// result there without saying so. The export API returns every row.
const MaxExecuteRows = 1000

// executeV2 is the NqlApiExecuteV2Response schema.
type executeV2 struct {
	QueryID           string           `json:"queryId"`
	ExecutedQuery     string           `json:"executedQuery"`
	Rows              json.Number      `json:"rows"`
	ExecutionDateTime string           `json:"executionDateTime"`
	Data              []map[string]any `json:"data"`
}

// Execute runs a saved query with NQL execute v2 (JSON, x-utc-times: true); it
// returns at most MaxExecuteRows rows.
// Parameters are passed without '$'. Execute is a read, so every transient failure
// is retried.
func (c *Client) Execute(ctx context.Context, queryID string, params map[string]string) (*Result, error) {
	if err := c.checkQueryID(callExecute, queryID); err != nil {
		return nil, err
	}
	var v executeV2
	_, err := c.do(ctx, request{call: callExecute, method: http.MethodPost, path: "/api/v2/nql/execute",
		body: nqlRequest{QueryID: queryID, Parameters: params}, target: queryID, limiter: c.nql, policy: retryReads, utc: true}, &v)
	if err != nil {
		return nil, err
	}
	res := &Result{QueryID: v.QueryID, ExecutedQuery: v.ExecutedQuery, Rows: v.Data}
	if t, ok := ParseTime(v.ExecutionDateTime); ok {
		res.Executed = t
	}
	if res.Rows == nil {
		res.Rows = []map[string]any{}
	}
	for _, row := range res.Rows {
		for k, x := range row {
			row[k] = plain(x)
		}
	}
	c.times.rows(res.Rows)
	return res, nil
}

// nqlRequest is the body of execute and export.
type nqlRequest struct {
	QueryID     string            `json:"queryId"`
	Parameters  map[string]string `json:"parameters,omitempty"`
	Compression string            `json:"compression,omitempty"`
}

// checkQueryID refuses an id the API would refuse, without calling it.
func (c *Client) checkQueryID(call, id string) error {
	if queryIDRE.MatchString(id) {
		return nil
	}
	return &Error{Instance: c.name, Call: call, Target: id, Code: CodeInvalid,
		Message: "query id " + clean(id, 64) + " does not match " + queryIDRE.String()}
}

// plain turns decoded JSON numbers into int64 or float64, recursively.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		for k := range x {
			x[k] = plain(x[k])
		}
	case map[string]any:
		for k := range x {
			x[k] = plain(x[k])
		}
	}
	return v
}
