package wrapper

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/dexbridge/dexbridge/events"
)

// ContentType is the media type of an export format (events.ExportNDJSON: one JSON
// object per line, keyed by column in column order; events.ExportCSV: a header row,
// then the rows).
func ContentType(format string) string {
	if format == events.ExportCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// Encoder writes exported rows in a format, buffered: Close flushes the rest.
type Encoder struct {
	bw      *bufio.Writer
	csv     *csv.Writer // nil for NDJSON
	headers []string    // the CSV header row when no row comes
	wrote   bool        // the CSV header row is written
	line    bytes.Buffer
	rec     []string
}

// NewEncoder returns an encoder of format writing to w; headers are the CSV header
// row of an export without rows (a row's own columns win otherwise).
func NewEncoder(format string, w io.Writer, headers []string) (*Encoder, error) {
	e := &Encoder{bw: bufio.NewWriterSize(w, 32<<10), headers: headers}
	switch format {
	case events.ExportNDJSON:
	case events.ExportCSV:
		e.csv = csv.NewWriter(e.bw)
	default:
		return nil, fmt.Errorf("unknown export format %q", format)
	}
	return e, nil
}

// Row writes one row; columns name values.
func (e *Encoder) Row(columns []string, values []any) error {
	if e.csv != nil {
		return e.csvRow(columns, values)
	}
	e.line.Reset()
	e.line.WriteByte('{')
	for k, c := range columns {
		if k > 0 {
			e.line.WriteByte(',')
		}
		key, _ := json.Marshal(c)
		e.line.Write(key)
		e.line.WriteByte(':')
		var v any
		if k < len(values) {
			v = values[k]
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			v = nil
		}
		val, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode column %s: %w", c, err)
		}
		e.line.Write(val)
	}
	e.line.WriteString("}\n")
	_, err := e.bw.Write(e.line.Bytes())
	return err
}

func (e *Encoder) csvRow(columns []string, values []any) error {
	if !e.wrote {
		e.wrote = true
		if err := e.csv.Write(columns); err != nil {
			return err
		}
	}
	e.rec = e.rec[:0]
	for k := range columns {
		var v any
		if k < len(values) {
			v = values[k]
		}
		e.rec = append(e.rec, csvText(v))
	}
	return e.csv.Write(e.rec)
}

// Close writes what is buffered (and the CSV header row of an export without rows).
func (e *Encoder) Close() error {
	if e.csv != nil {
		if !e.wrote {
			e.wrote = true
			if err := e.csv.Write(e.headers); err != nil {
				return err
			}
		}
		e.csv.Flush()
		if err := e.csv.Error(); err != nil {
			return err
		}
	}
	return e.bw.Flush()
}

// csvText is a value as CSV text: null is an empty cell.
func csvText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}
