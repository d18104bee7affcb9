package topics

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wrapper"
)

// execute answers a saved query through the wrapper: the NQL endpoint's logic.
func execute(ctx context.Context, defs *topic.Set, w *wrapper.Wrapper, req events.NQLRequest) (events.NQLReply, error) {
	if err := req.Validate(); err != nil {
		return events.NQLReply{}, err
	}
	q, r, err := savedQuery(defs, req)
	if err != nil {
		return events.NQLReply{}, err
	}
	a, err := w.Run(ctx, q, r)
	if err != nil {
		return events.NQLReply{}, err
	}
	asOf := a.DataAsOf.UTC()
	if a.Rows == nil {
		a.Rows = []map[string]any{}
	}
	return events.NQLReply{Header: events.NewHeader(events.TypeNQLReply), QueryID: q.ID, Headers: a.Headers, Rows: a.Rows,
		Source: a.Source, Instance: a.Instance, DataAsOf: &asOf, Truncated: a.Truncated, RowLimit: a.RowLimit}, nil
}

// export streams every row of a saved query through the export API, in the format
// asked: the NQL export endpoint's logic. Rows pass through as the results file
// downloads, paced by the caller (natsrpc streams), never held whole.
func export(ctx context.Context, defs *topic.Set, w *wrapper.Wrapper, req events.NQLExportRequest, out *natsrpc.StreamWriter) (events.NQLExportFinished, error) {
	if err := req.Validate(); err != nil {
		return events.NQLExportFinished{}, err
	}
	q, r, err := savedQuery(defs, events.NQLRequest{QueryID: req.QueryID, Parameters: req.Parameters, Instance: req.Instance})
	if err != nil {
		return events.NQLExportFinished{}, err
	}
	sink := &streamSink{out: out, format: req.Format}
	n, err := w.Export(ctx, q, r, sink)
	if err == nil {
		err = sink.enc.Close()
	}
	if err != nil {
		return events.NQLExportFinished{}, err
	}
	return events.NQLExportFinished{Header: events.NewHeader(events.TypeNQLExportFinished), Rows: n, Truncated: sink.truncated}, nil
}

// streamSink encodes an export's rows onto a stream.
type streamSink struct {
	out       *natsrpc.StreamWriter
	format    string
	enc       *wrapper.Encoder
	truncated bool
}

func (s *streamSink) Start(st wrapper.ExportStart) error {
	enc, err := wrapper.NewEncoder(s.format, s.out, st.Headers)
	if err != nil {
		return problem.InvalidField("format", "%s", err.Error())
	}
	s.enc, s.truncated = enc, st.Truncated
	return s.out.Start(events.NQLExportStarted{Header: events.NewHeader(events.TypeNQLExportStarted), QueryID: st.QueryID,
		Headers: st.Headers, Instance: st.Instance, Format: s.format, ContentType: wrapper.ContentType(s.format),
		DataAsOf: st.DataAsOf, Truncated: st.Truncated})
}

func (s *streamSink) Row(columns []string, values []any) error { return s.enc.Row(columns, values) }

// savedQuery is the query a request names and the wrapper's request for it.
func savedQuery(defs *topic.Set, req events.NQLRequest) (*topic.SavedQuery, wrapper.Request, error) {
	q, ok := defs.Query(req.QueryID)
	if !ok {
		return nil, wrapper.Request{}, problem.New(problem.NotFound, "no saved query %s", req.QueryID)
	}
	params := req.Parameters
	if params == nil {
		params = map[string]string{}
	}
	return q, wrapper.Request{Parameters: params, Instance: req.Instance}, nil
}

// unavailable is the answer of a worker built without what diagnosis needs.
func unavailable(what string) error {
	return problem.New(problem.ServiceUnavailable, "%s is not available on this topics worker", what).Retry(5 * time.Second)
}
