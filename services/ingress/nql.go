package ingress

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// decodeQuery reads the saved query id of the path and the JSON body into body. In a
// URL path the leading # of the id is sent as %23, or left out.
func decodeQuery(w http.ResponseWriter, r *http.Request, body any) (string, error) {
	id := mux.Vars(r)["query_id"]
	if !strings.HasPrefix(id, "#") {
		id = "#" + id
	}
	if !events.ValidQueryID(id) {
		return "", problem.InvalidField("query_id", "a saved query id is # and 2 to 255 characters of a-z, 0-9 and _ (send # as %%23, or leave it out)")
	}
	return id, decodeJSON(w, r, body, true)
}

// executeQuery answers POST /api/v1/nql/{query_id}, body
// {"parameters": {"device_name": "..."}, "instance": "eu"}: a saved query through the
// NQL wrapper, from the cache or live.
func (h *handlers) executeQuery(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Parameters map[string]string `json:"parameters"`
		Instance   string            `json:"instance"`
	}
	id, err := decodeQuery(w, r, &body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req := events.NQLRequest{Header: events.NewHeader(events.TypeNQLRequest), QueryID: id, Parameters: body.Parameters, Instance: body.Instance}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var reply events.NQLReply
	if err := h.opts.RPC.Call(r.Context(), h.opts.Subjects.Of(events.NQLExecute), req, &reply, natsrpc.Idempotent); err != nil {
		h.fail(w, r, err)
		return
	}
	if reply.Rows == nil {
		reply.Rows = []map[string]any{}
	}
	if reply.Headers == nil {
		reply.Headers = []string{}
	}
	writeJSON(w, http.StatusOK, api.QueryResult{DataAsOf: reply.DataAsOf, Headers: reply.Headers, Instance: reply.Instance,
		QueryID: reply.QueryID, Rows: reply.Rows, Source: reply.Source, Truncated: reply.Truncated, RowLimit: reply.RowLimit})
}

// Headers of an export's answer: what the stream's start says, before the first row,
// and the trailer with the count of rows sent, after the last.
const (
	headerInstance  = "Dexbridge-Instance"
	headerDataAsOf  = "Dexbridge-Data-As-Of"
	headerTruncated = "Dexbridge-Truncated"
	headerRows      = "Dexbridge-Rows"
)

// Bounds of an export's answer: the wait for the instance to complete the export,
// then for the client to take each chunk.
const (
	exportStartWait = time.Hour
	exportChunkWait = time.Minute
)

// exportQuery answers POST /api/v1/nql/{query_id}/export, body {"parameters": {...},
// "instance": "eu", "format": "ndjson"|"csv"}: every row of a saved query through the
// NQL export API, streamed from the worker as the results file downloads. The ingress
// copies the worker's chunks to the client, one at a time: the worker goes no faster
// than the client reads, and a client that goes away stops the download.
func (h *handlers) exportQuery(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Parameters map[string]string `json:"parameters"`
		Instance   string            `json:"instance"`
		Format     string            `json:"format"`
	}
	id, err := decodeQuery(w, r, &body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Format == "" {
		body.Format = events.ExportNDJSON
	}
	req := events.NQLExportRequest{Header: events.NewHeader(events.TypeNQLExportRequest), QueryID: id, Parameters: body.Parameters,
		Instance: body.Instance, Format: body.Format}
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	// The server's read and write timeouts are for ordinary answers: a read deadline
	// left in place would end the request's context, and an export may take long
	// to complete and to download.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(exportStartWait))
	var start events.NQLExportStarted
	s, err := h.opts.RPC.Stream(r.Context(), h.opts.Subjects.Of(events.NQLExport), req, &start)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer s.Close()
	hd := w.Header()
	hd.Set("Content-Type", start.ContentType)
	hd.Set("X-Accel-Buffering", "no")
	hd.Set(headerInstance, start.Instance)
	hd.Set(headerDataAsOf, start.DataAsOf.UTC().Format(time.RFC3339))
	hd.Set(headerTruncated, strconv.FormatBool(start.Truncated))
	hd.Set("Trailer", headerRows)
	w.WriteHeader(http.StatusOK)
	for {
		chunk, err := s.Next(r.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The status is sent: break the response off, so that the client sees an
			// incomplete answer, never a short one that looks whole.
			if r.Context().Err() == nil {
				h.opts.Log.WarnContext(r.Context(), "export broke off", "query_id", id, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(exportChunkWait))
		if _, err := w.Write(chunk); err != nil {
			return // the client went away: Close stops the worker
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	var end events.NQLExportFinished
	if err := s.Trailer(&end); err != nil {
		h.opts.Log.WarnContext(r.Context(), "export trailer unreadable", "query_id", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	hd.Set(headerRows, strconv.FormatInt(end.Rows, 10))
}
