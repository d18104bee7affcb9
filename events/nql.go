package events

import (
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// Type tokens of the NQL export messages. An export is a stream (natsrpc streams):
// the request, a start, the body in the format asked (raw chunks), and an end.
const (
	TypeNQLExportRequest  = "dexbridge.nql.v1.export_request"
	TypeNQLExportStarted  = "dexbridge.nql.v1.export_started"
	TypeNQLExportFinished = "dexbridge.nql.v1.export_finished"
)

// Export formats: one JSON object per row and line, or CSV with a header row.
const (
	ExportNDJSON = "ndjson"
	ExportCSV    = "csv"
)

// NQLExportRequest runs a saved query through the export API and streams every
// row back in Format.
type NQLExportRequest struct {
	Header
	QueryID    string            `json:"query_id"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Instance   string            `json:"instance,omitempty"`
	Format     string            `json:"format"`
}

// NQLExportStarted opens an export's stream, once the instance has completed the
// export and before its first row.
type NQLExportStarted struct {
	Header
	QueryID     string    `json:"query_id"`
	Headers     []string  `json:"headers"` // the query's columns
	Instance    string    `json:"instance"`
	Format      string    `json:"format"`
	ContentType string    `json:"content_type"` // of the body that follows
	DataAsOf    time.Time `json:"data_as_of"`   // when the export was submitted
	// Truncated says the instance cut the result short (a licence limit): the rows
	// that follow are a prefix of the result.
	Truncated bool `json:"truncated"`
}

// NQLExportFinished closes an export's stream: every row of the file was sent.
type NQLExportFinished struct {
	Header
	Rows      int64 `json:"rows"`
	Truncated bool  `json:"truncated"`
}

// Validate checks the query id, the instance and the format of an export.
func (r NQLExportRequest) Validate() error {
	if err := (NQLRequest{QueryID: r.QueryID, Instance: r.Instance}).Validate(); err != nil {
		return err
	}
	if r.Format != ExportNDJSON && r.Format != ExportCSV {
		return problem.InvalidField("format", "want %s or %s", ExportNDJSON, ExportCSV)
	}
	return nil
}
