package wrapper

import (
	"context"
	"errors"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// ExportStart is what an export says before its first row.
type ExportStart struct {
	QueryID string
	// Headers are the query's columns; the rows carry the columns of the instance's
	// results file, the same unless the query saved in the tenant differs.
	Headers  []string
	Instance string
	// DataAsOf is when the export was submitted: its rows are at least that fresh.
	DataAsOf time.Time
	// Truncated says the instance cut the result short (status 206, a licence
	// limit): the rows that follow are a prefix of the result.
	Truncated bool
}

// ExportSink receives an export's rows as they download.
type ExportSink interface {
	// Start is called once, before the first row.
	Start(ExportStart) error
	// Row is called for each row in order: columns is the same slice on every call,
	// values are new, typed by the query's column types (numbers, booleans, RFC
	// 3339 UTC date-times, text; an empty cell is nil).
	Row(columns []string, values []any) error
}

// Export runs q through the instance's export API (always live, whatever the cache
// holds) and hands every row to sink as the results file downloads, so a result of
// any size passes through in constant memory. The instance is chosen as for Run. A
// refusal (parameters, device, instance, the tenant) comes before sink.Start; an
// error of sink, or ctx ending, stops the download and is returned. It returns the
// number of rows delivered.
func (w *Wrapper) Export(ctx context.Context, q *topic.SavedQuery, r Request, sink ExportSink) (int64, error) {
	if err := CheckParameters(q, r.Parameters); err != nil {
		return 0, err
	}
	t, err := w.target(ctx, q, r)
	if err != nil {
		return 0, err
	}
	live, ok := w.live[t.instance]
	if !ok {
		return 0, w.unknownInstance(t.instance)
	}
	types := make(map[string]nql.FieldType, len(q.Analysis.Headers))
	for k, h := range q.Analysis.Headers {
		if k < len(q.Analysis.Types) {
			types[h] = q.Analysis.Types[k]
		}
	}
	submitted := w.now().UTC().Truncate(time.Second)
	var (
		n       int64
		sinkErr error
		colType []nql.FieldType
	)
	ready := func(partial bool) error {
		sinkErr = sink.Start(ExportStart{QueryID: q.ID, Headers: q.Analysis.Headers, Instance: t.instance,
			DataAsOf: submitted, Truncated: partial})
		return sinkErr
	}
	err = live.ExportStream(ctx, q.ID, r.Parameters, ready, func(header, record []string) error {
		if colType == nil {
			colType = make([]nql.FieldType, len(header))
			for k, h := range header {
				colType[k] = types[h] // TypeAny for a column the query does not list
			}
		}
		values := make([]any, len(header))
		for k := range header {
			if k < len(record) {
				values[k] = exportCell(record[k], colType[k])
			}
		}
		if sinkErr = sink.Row(header, values); sinkErr != nil {
			return sinkErr
		}
		n++
		return nil
	})
	switch {
	case sinkErr != nil:
		return n, sinkErr
	case errors.Is(err, nexthink.ErrPartial):
		return n, nil // said at Start; every row the instance gave was delivered
	case err != nil && ctx.Err() != nil:
		return n, ctx.Err()
	case err != nil:
		return n, nexthink.Problem(err)
	}
	w.log.DebugContext(ctx, "query exported", "query", q.ID, "instance", t.instance, "rows", n)
	return n, nil
}

// exportCell types a results file cell as an answer carries it.
func exportCell(s string, t nql.FieldType) any {
	if s == "" {
		return nil
	}
	return cell(typed(s, t))
}
