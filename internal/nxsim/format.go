package nxsim

import (
	"encoding/csv"
	"io"
	"math"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// nqlTimeLayout is how date-times appear inside NQL rows ("2023-07-17 17:53:49").
const nqlTimeLayout = "2006-01-02 15:04:05"

// cell converts a result value to its JSON form.
func cell(v nql.Value, loc *time.Location) any {
	switch x := v.(type) {
	case time.Time:
		return x.In(loc).Format(nqlTimeLayout)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return v
}

// csvCell converts a result value to its CSV text.
func csvCell(v nql.Value, loc *time.Location) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.In(loc).Format(nqlTimeLayout)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// writeCSV writes a header row and the rows.
func writeCSV(w io.Writer, res *nql.Result, loc *time.Location) error {
	enc := newCSVEncoder(w, res.Headers, loc)
	for _, row := range res.Rows {
		if err := enc.row(row); err != nil {
			return err
		}
	}
	return enc.flush()
}

// csvEncoder writes a header row, then rows as they come.
type csvEncoder struct {
	cw  *csv.Writer
	rec []string
	loc *time.Location
	err error
}

func newCSVEncoder(w io.Writer, headers []string, loc *time.Location) *csvEncoder {
	e := &csvEncoder{cw: csv.NewWriter(w), rec: make([]string, len(headers)), loc: loc}
	e.err = e.cw.Write(headers)
	return e
}

func (e *csvEncoder) row(row []nql.Value) error {
	if e.err != nil {
		return e.err
	}
	for k := range e.rec {
		e.rec[k] = ""
		if k < len(row) {
			e.rec[k] = csvCell(row[k], e.loc)
		}
	}
	e.err = e.cw.Write(e.rec)
	return e.err
}

func (e *csvEncoder) flush() error {
	if e.err != nil {
		return e.err
	}
	e.cw.Flush()
	return e.cw.Error()
}

// negotiate picks "application/json" or "text/csv" from an Accept header, "" when
// neither is acceptable. Empty, */* and application/* mean JSON.
func negotiate(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "application/json"
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok && q == "0" {
			continue
		}
		switch mt {
		case "application/json", "*/*", "application/*":
			return "application/json"
		case "text/csv", "text/*":
			return "text/csv"
		}
	}
	return ""
}

// v1DateTime is the executionDateTime object of execute v1.
type v1DateTime struct {
	Year   int `json:"year"`
	Month  int `json:"month"`
	Day    int `json:"day"`
	Hour   int `json:"hour"`
	Minute int `json:"minute"`
	Second int `json:"second"`
}

func toV1DateTime(t time.Time) v1DateTime {
	return v1DateTime{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()}
}
