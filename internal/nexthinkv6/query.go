package nexthinkv6

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nxql"
)

// NQL columns that identify a device in a result, and the one that dates it.
const (
	colCollectorUID = "device.collector.uid"
	colDeviceName   = "device.name"
	colLastSeen     = "device.last_seen"
	// colDeviceUID is Infinity's own device id; a V6 device has one identifier,
	// so a form that leaves device.uid unmapped gets the collector UID there.
	colDeviceUID = "device.uid"
)

// Execute runs a saved query's NXQL form and returns at most
// nexthink.MaxExecuteRows rows keyed by the NQL columns.
func (d *Driver) Execute(ctx context.Context, queryID string, params map[string]string) (*nexthink.Result, error) {
	rows, text, err := d.run(ctx, queryID, params)
	if err != nil {
		return nil, err
	}
	if len(rows) > nexthink.MaxExecuteRows {
		rows = rows[:nexthink.MaxExecuteRows]
	}
	return &nexthink.Result{QueryID: queryID, ExecutedQuery: text, Executed: d.now().UTC(), Rows: rows}, nil
}

// Export runs a saved query's NXQL form and hands over every row, the columns
// sorted by name.
func (d *Driver) Export(ctx context.Context, queryID string, params map[string]string, fn func(header, record []string) error) error {
	return d.ExportStream(ctx, queryID, params, nil, fn)
}

// exportBuffered is ExportStream for a form that cannot stream (several NXQL
// queries merged on a key): every row is read first.
func (d *Driver) exportBuffered(ctx context.Context, f *nxql.Form, params map[string]string, ready func(partial bool) error,
	fn func(header, record []string) error) error {
	rows, _, err := d.run(ctx, f.ID, params)
	if err != nil {
		return err
	}
	if ready != nil {
		if err := ready(false); err != nil {
			return fmt.Errorf("export %s: %w", f.ID, err)
		}
	}
	header := exportHeader(f, rows)
	for _, r := range rows {
		if err := fn(header, record(header, r)); err != nil {
			return fmt.Errorf("export %s: %w", f.ID, err)
		}
	}
	return nil
}

// exportHeader is an export's columns, sorted by name: the form's, and for a form
// with dynamic fields those the rows name (an Engine names the same columns in
// every row of an answer, so a streamed export passes each Engine's first row).
func exportHeader(f *nxql.Form, rows []map[string]any) []string {
	header := make([]string, 0, len(f.Columns)+1)
	for c := range f.Columns {
		header = append(header, c)
	}
	if _, ok := f.Unmapped[colDeviceUID]; ok {
		header = append(header, colDeviceUID)
	}
	if f.Dynamic {
		// The Engines' categories and scores: the columns only the answers name.
		seen := map[string]bool{}
		for _, r := range rows {
			for c := range r {
				if _, ok := f.Columns[c]; !ok && !seen[c] && c != colDeviceUID {
					seen[c] = true
					header = append(header, c)
				}
			}
		}
	}
	slices.Sort(header)
	return header
}

// record is a row's cells in header's order.
func record(header []string, r map[string]any) []string {
	rec := make([]string, len(header))
	for k, h := range header {
		rec[k] = cell(r[h])
	}
	return rec
}

// cell writes a value as an export's CSV cell.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// target is the device a query is about, from its parameters.
func target(f *nxql.Form, params map[string]string) (key string, ok bool) {
	for _, p := range f.Params {
		switch p {
		case "collector_uid":
			return "uid:" + strings.ToLower(strings.TrimSpace(params[p])), true
		case "device_name":
			return "name:" + strings.ToLower(strings.TrimSpace(params[p])), true
		}
	}
	return "", false
}

// run runs the form of queryID where its rows are: on the Engine the device is
// routed to, else on every Engine up; it returns the rows keyed by NQL column
// and the first query's text.
func (d *Driver) run(ctx context.Context, queryID string, params map[string]string) ([]map[string]any, string, error) {
	f, ok := d.forms[queryID]
	if !ok {
		return nil, "", &nexthink.Error{Instance: d.cfg.Instance, Call: "nql.execute", Target: queryID, Status: http.StatusNotFound,
			Code: "NO_NXQL_FORM", Message: "the query has no NXQL form, so it cannot run on a V6 instance"}
	}
	platforms, err := f.Platforms(params)
	if err != nil {
		return nil, "", &nexthink.Error{Instance: d.cfg.Instance, Call: "nql.execute", Target: queryID, Code: nexthink.CodeInvalid, Message: err.Error()}
	}
	args := f.Args(params)
	text := nxql.Substitute(f.NXQL[0].Text, args)
	engines, err := d.engineList(ctx)
	if err != nil {
		return nil, "", err
	}
	key, targeted := target(f, params)
	if targeted {
		if e := d.routed(ctx, key, engines); e != nil {
			rows, err := d.runOn(ctx, e, f, args, platforms)
			if err == nil && len(rows) > 0 {
				d.learn(ctx, tagAll(e, rows))
				return rows, text, nil
			}
			// The Engine no longer has it, or failed: ask every Engine.
		}
	}
	type answer struct {
		e    *engineState
		rows []map[string]any
		err  error
	}
	answers := make([]answer, len(engines))
	var wg sync.WaitGroup
	for k, e := range engines {
		answers[k].e = e
		if !d.usable(e) {
			answers[k].err = d.err(httpCall{name: "nxql.query", engine: e, target: queryID}, 0, nexthink.CodeUnavailable,
				"the Engine is marked down", nil)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[k].rows, answers[k].err = d.runOn(ctx, e, f, args, platforms)
		}()
	}
	wg.Wait()
	var rows []tagged
	var failed []string
	var firstErr, refused error
	limitedOnly := true
	for _, a := range answers {
		if a.err != nil {
			var ne *nexthink.Error
			if errors.As(a.err, &ne) && ne.Status >= 400 && ne.Status < 500 && ne.Status != http.StatusTooManyRequests {
				refused = a.err // the query itself is wrong: every Engine would say so
			}
			if ne == nil || ne.Code != nexthink.CodeRateLimited {
				limitedOnly = false
				if firstErr == nil || limitedErr(firstErr) {
					firstErr = a.err
				}
			} else if firstErr == nil {
				firstErr = a.err
			}
			failed = append(failed, a.e.Name)
			continue
		}
		for _, r := range a.rows {
			rows = append(rows, tagged{a.e, r})
		}
	}
	unanswered := func() error {
		return &nexthink.Error{Instance: d.cfg.Instance, Call: "nxql.query on " + strings.Join(failed, ", "), Target: queryID,
			Code: nexthink.CodeUnavailable, Message: "the Engines did not answer; the device may be there", Err: firstErr,
			RetryAfter: d.cfg.ProbeEvery}
	}
	switch {
	case refused != nil:
		return nil, "", refused
	case len(failed) == len(engines) && (limitedOnly || !targeted):
		return nil, "", firstErr
	case len(failed) == len(engines):
		return nil, "", unanswered()
	}
	rows = dedupe(rows)
	out := make([]map[string]any, len(rows))
	for k, t := range rows {
		out[k] = t.row
	}
	d.learn(ctx, rows)
	if len(failed) > 0 {
		if targeted && len(out) == 0 {
			// The device may be on an Engine that did not answer: say so rather than
			// "unknown device".
			return nil, "", unanswered()
		}
		d.log.Warn("nexthink v6 query answered without some Engines", "query", queryID, "engines_missing", failed)
	}
	return out, text, nil
}

// runOn runs a form's queries on one Engine and returns its rows under the NQL
// column names.
func (d *Driver) runOn(ctx context.Context, e *engineState, f *nxql.Form, args, platforms []string) ([]map[string]any, error) {
	results := make([][]map[string]any, len(f.NXQL))
	for k := range f.NXQL {
		text := f.Text(k, d.cfg.ActivityPeriod)
		body, ne := d.query(ctx, e, f.ID, text, args, platforms)
		if d.refusedWildcard(e, f, text, ne) {
			body, ne = d.query(ctx, e, f.ID, strings.ReplaceAll(text, dynamicWildcard, ""), args, platforms)
		}
		if ne != nil {
			return nil, ne
		}
		rows, err := decodeRows(body)
		if err != nil {
			d.failed(e, err)
			return nil, d.err(httpCall{name: "nxql.query", engine: e, target: f.ID}, http.StatusOK, nexthink.CodeBadResponse,
				"the answer is not the expected JSON", err)
		}
		results[k] = rows
	}
	merged := f.Merge(results)
	out := make([]map[string]any, len(merged))
	_, uid := f.Unmapped[colDeviceUID]
	for k, r := range merged {
		out[k] = f.ToNQL(r)
		if uid {
			out[k][colDeviceUID] = out[k][colCollectorUID]
		}
	}
	return out, nil
}

// dynamicWildcard selects every category and score of the Engine's devices, in a
// form with Dynamic set.
const dynamicWildcard = " #*"

// refusedWildcard reports (and logs) whether Engine e refused text's dynamic-field
// wildcard: an Engine that defines no category or score may, and its devices then
// have no dynamic field to cache, so the query is asked again without it.
func (d *Driver) refusedWildcard(e *engineState, f *nxql.Form, text string, ne *nexthink.Error) bool {
	if ne == nil || !f.Dynamic || ne.Status < 400 || ne.Status >= 500 || ne.Status == http.StatusTooManyRequests ||
		!strings.Contains(text, dynamicWildcard) {
		return false
	}
	d.log.Warn("nexthink v6 engine refused the dynamic fields' wildcard; discovering without them",
		"engine", e.Name, "query", f.ID, "err", ne)
	return true
}

// query runs one NXQL text on Engine e with the parameters p1, p2, ... and the
// platforms.
func (d *Driver) query(ctx context.Context, e *engineState, id, text string, args, platforms []string) ([]byte, *nexthink.Error) {
	form := url.Values{"query": {text}, "format": {"json"}, "platform": platforms}
	for i, a := range args {
		form.Set("p"+strconv.Itoa(i+1), a)
	}
	// POST: the poller's grouped query carries 250 parameters.
	return d.do(ctx, httpCall{name: "nxql.query", method: http.MethodPost, url: strings.TrimRight(e.URL, "/") + "/2/query",
		form: form, target: id, limiter: d.limiter(e.Name), engine: e, policy: retryReads})
}

// decodeRows reads an Engine's JSON result: an array of objects. Integral
// numbers become int64, others float64; date-times ("2006-01-02T15:04:05", UTC)
// become RFC 3339 as Infinity's rows carry them.
func decodeRows(b []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw []map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	for _, r := range raw {
		for k, v := range r {
			r[k] = plain(v)
		}
	}
	return raw, nil
}

func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case string:
		// Go's parser takes a one-digit hour too: such a date-time gets its zone like
		// the others rather than pass for a plain string.
		if n := len(x); n == len(nxql.TimeLayout) || n == len(nxql.TimeLayout)-1 {
			if t, err := time.Parse(nxql.TimeLayout, x); err == nil {
				return nexthink.FormatTime(t)
			}
		}
		return x
	case []any:
		for k := range x {
			x[k] = plain(x[k])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = plain(x[k])
		}
		return x
	}
	return v
}

// dedupe keeps one row per device when the rows identify devices (the Engine
// with the latest last_seen wins: a moved device's copy on the Engine it left is
// older), and one of each identical row otherwise (a user listed by several
// Engines).
func dedupe(rows []tagged) []tagged {
	out := rows[:0:0]
	index := map[string]int{}
	for _, t := range rows {
		k := rowKey(t.row)
		i, seen := index[k]
		switch {
		case !seen:
			index[k] = len(out)
			out = append(out, t)
		case fmt.Sprint(t.row[colLastSeen]) > fmt.Sprint(out[i].row[colLastSeen]):
			out[i] = t
		}
	}
	return out
}

// tagged is a row and the Engine that answered it.
type tagged struct {
	e   *engineState
	row map[string]any
}

func tagAll(e *engineState, rows []map[string]any) []tagged {
	out := make([]tagged, len(rows))
	for k, r := range rows {
		out[k] = tagged{e, r}
	}
	return out
}

// rowKey identifies a row: its device and remote-action request when it has
// them, else all its values.
func rowKey(r map[string]any) string {
	if uid, ok := r[colCollectorUID].(string); ok && uid != "" {
		return "uid:" + strings.ToLower(uid) + "\x00" + fmt.Sprint(r["remote_action.executions.request_id"]) + "\x00" + fmt.Sprint(r["user.name"])
	}
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v\x00", k, r[k])
	}
	return b.String()
}

func limitedErr(err error) bool {
	var ne *nexthink.Error
	return errors.As(err, &ne) && ne.Code == nexthink.CodeRateLimited
}
