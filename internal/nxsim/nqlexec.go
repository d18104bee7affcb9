package nxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// maxExecuteRows is the row cap of NQL execute.
const maxExecuteRows = 1000

// executeRequest is the body of NQL execute (and export).
type executeRequest struct {
	QueryID     *string           `json:"queryId"`
	Parameters  map[string]string `json:"parameters"`
	Compression *string           `json:"compression"` // export only
}

// decodeExecute reads and checks an execute or export body, writing a 400 when bad.
func decodeExecute(w http.ResponseWriter, r *http.Request) (executeRequest, bool) {
	var req executeRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeNQLError(w, http.StatusBadRequest, "request body too large or unreadable", "body")
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		writeNQLError(w, http.StatusBadRequest, "invalid request body: "+err.Error(), "body")
		return req, false
	}
	if dec.More() {
		writeNQLError(w, http.StatusBadRequest, "invalid request body: trailing data", "body")
		return req, false
	}
	if req.QueryID == nil {
		writeNQLError(w, http.StatusBadRequest, "queryId is required", "queryId")
		return req, false
	}
	if !queryIDRE.MatchString(*req.QueryID) {
		writeNQLError(w, http.StatusBadRequest, "queryId must match "+queryIDRE.String(), "queryId")
		return req, false
	}
	return req, true
}

// prepare finds the saved query and substitutes the parameters, writing 404 or 400.
func (t *tenant) prepare(w http.ResponseWriter, id string, params map[string]string) (*savedQuery, string, bool) {
	t.counters.query(id)
	q, ok := t.queries.get(id)
	if !ok {
		writeNQLError(w, http.StatusNotFound, "No query associated with that ID.", id)
		return nil, "", false
	}
	executed, err := nql.Substitute(q.NQL, params)
	if err != nil {
		writeNQLError(w, http.StatusBadRequest, err.Error(), id)
		return nil, "", false
	}
	return q, executed, true
}

// queryNow is the end of relative timeframes: the next second, so events stamped
// this second are inside "past 24h".
func (t *tenant) queryNow() time.Time {
	return t.clock().Truncate(time.Second).Add(time.Second)
}

// run executes q with a row cap (0: none) and the configured time-out.
func (t *tenant) run(ctx context.Context, q *savedQuery, params map[string]string, maxRows int, timeout time.Duration) (*nql.Result, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	res, err := q.Plan.Run(ctx, t.src, params, nql.RunOptions{Now: t.queryNow(), MaxRows: maxRows})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", q.ID, err)
	}
	t.log.Debug("query run", "query_id", q.ID, "rows", len(res.Rows), "duration_ms", time.Since(start).Milliseconds())
	return res, nil
}

// writeRunError answers a failed run.
func writeRunError(w http.ResponseWriter, id string, err error) {
	var pe *nql.ParamError
	switch {
	case errors.As(err, &pe):
		writeNQLError(w, http.StatusBadRequest, pe.Error(), id)
	case errors.Is(err, context.DeadlineExceeded):
		writeNQLError(w, http.StatusInternalServerError, "Query execution timed out.", id)
	default:
		writeNQLError(w, http.StatusInternalServerError, "Query execution failed.", id)
	}
}

// location is the time zone of a request: UTC with "x-utc-times: true".
func (t *tenant) location(r *http.Request) *time.Location {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("x-utc-times")), "true") {
		return time.UTC
	}
	return t.loc
}

// handleExecute serves POST /api/v1/nql/execute (v=1) and /api/v2/nql/execute (v=2).
func (t *tenant) handleExecute(v int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format := negotiate(r.Header.Get("Accept"))
		if format == "" {
			writeNQLError(w, http.StatusNotAcceptable, `Not Acceptable - The accept header should be "application/json", "text/csv" or empty.`, "Accept")
			return
		}
		req, ok := decodeExecute(w, r)
		if !ok {
			return
		}
		q, executed, ok := t.prepare(w, *req.QueryID, req.Parameters)
		if !ok {
			return
		}
		when := t.clock()
		res, err := t.run(r.Context(), q, req.Parameters, maxExecuteRows, t.queryTimeout)
		if err != nil {
			t.log.Warn("query failed", "query_id", q.ID, "err", err)
			writeRunError(w, q.ID, err)
			return
		}
		loc := t.location(r)
		if format == "text/csv" {
			var buf bytes.Buffer
			if err := writeCSV(&buf, res, loc); err != nil {
				writeNQLError(w, http.StatusInternalServerError, "encode CSV", q.ID)
				return
			}
			w.Header().Set("Content-Type", "text/csv")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(buf.Bytes())
			return
		}
		when = when.In(loc)
		if v == 1 {
			data := make([][]any, len(res.Rows))
			for k, row := range res.Rows {
				cells := make([]any, len(row))
				for j, c := range row {
					cells[j] = cell(c, loc)
				}
				data[k] = cells
			}
			writeJSON(w, http.StatusOK, map[string]any{
				"queryId": q.ID, "executedQuery": executed, "rows": len(res.Rows),
				"executionDateTime": toV1DateTime(when), "headers": res.Headers, "data": data,
			})
			return
		}
		data := make([]orderedRow, len(res.Rows))
		for k, row := range res.Rows {
			data[k] = orderedRow{headers: res.Headers, cells: row, loc: loc}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"queryId": q.ID, "executedQuery": executed, "rows": len(res.Rows),
			"executionDateTime": when.Format("2006-01-02T15:04:05"), "data": data,
		})
	}
}

// orderedRow encodes a v2 row as an object keyed by headers, in header order.
type orderedRow struct {
	headers []string
	cells   []nql.Value
	loc     *time.Location
}

func (o orderedRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for k, h := range o.headers {
		if k > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(h)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		var v any
		if k < len(o.cells) {
			v = cell(o.cells[k], o.loc)
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
