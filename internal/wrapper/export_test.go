package wrapper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// manyRows are n live rows.
func manyRows(n int) []map[string]any {
	rows := make([]map[string]any, n)
	for k := range rows {
		rows[k] = map[string]any{"device.name": fmt.Sprintf("PC-%04d", k)}
	}
	return rows
}

// A live answer of NQL execute's 1000 rows says it was cut, unless the query's own
// limit explains it; fewer rows are the whole result.
func TestTruncatedAtTheExecuteCap(t *testing.T) {
	tests := []struct {
		query     string
		rows      int
		truncated bool
	}{
		{"#all_windows", 1000, true},
		{"#all_windows", 999, false},
		{"#all_windows", 0, false},
		{"#first_1000", 1000, false},
	}
	for _, tt := range tests {
		e := newEnv(t, healthy(nil), "eu")
		e.eu.rows = manyRows(tt.rows)
		a, err := e.w.Run(context.Background(), e.query(t, tt.query), Request{Parameters: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		wantLimit := 0
		if tt.truncated {
			wantLimit = 1000
		}
		if a.Truncated != tt.truncated || a.RowLimit != wantLimit || len(a.Rows) != tt.rows {
			t.Errorf("%s with %d rows: got truncated %v row limit %d (%d rows), want %v %d", tt.query, tt.rows, a.Truncated, a.RowLimit, len(a.Rows), tt.truncated, wantLimit)
		}
	}
}

// Live date-times, computed columns included, come back as RFC 3339 UTC; other
// columns are untouched.
func TestLiveTimesByColumnType(t *testing.T) {
	e := newEnv(t, healthy(nil), "eu")
	e.eu.rows = []map[string]any{{"device.name": "PC-1", "device.last_seen": "2026-11-30 19:58:58",
		"last_activity": "2026-11-30 19:40:00", "device.hardware.memory": int64(8)}}
	a, err := e.w.Run(context.Background(), e.query(t, "#sessions"), Request{Parameters: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"device.name": "PC-1", "device.last_seen": "2026-11-30T19:58:58Z",
		"last_activity": "2026-11-30T19:40:00Z", "device.hardware.memory": int64(8)}
	if !reflect.DeepEqual(a.Rows[0], want) {
		t.Errorf("got %#v, want %#v", a.Rows[0], want)
	}
}

// recordSink records what an export hands over.
type recordSink struct {
	start   *ExportStart
	columns []string
	rows    [][]any
	failAt  int // Row fails on this row (1-based); 0 never
}

func (s *recordSink) Start(st ExportStart) error { s.start = &st; return nil }

func (s *recordSink) Row(columns []string, values []any) error {
	if s.start == nil {
		return errors.New("row before start")
	}
	s.columns = columns
	s.rows = append(s.rows, values)
	if len(s.rows) == s.failAt {
		return errSinkFull
	}
	return nil
}

var errSinkFull = errors.New("sink full")

func TestExportTypesEveryRow(t *testing.T) {
	e := newEnv(t, healthy(nil), "eu")
	e.eu.export = [][]string{
		{"device.name", "device.last_seen", "last_activity", "device.hardware.memory"},
		{"PC-1", "2026-11-30T19:58:58Z", "2026-11-30 19:40:00", "17179869184"},
		{"PC-2", "", "", ""},
	}
	var sink recordSink
	n, err := e.w.Export(context.Background(), e.query(t, "#sessions"), Request{Parameters: map[string]string{}}, &sink)
	if err != nil || n != 2 {
		t.Fatalf("got %d rows, %v", n, err)
	}
	if sink.start.Instance != "eu" || sink.start.Truncated || sink.start.QueryID != "#sessions" || !sink.start.DataAsOf.Equal(now) {
		t.Errorf("start: got %+v", sink.start)
	}
	want := [][]any{{"PC-1", "2026-11-30T19:58:58Z", "2026-11-30T19:40:00Z", int64(17179869184)}, {"PC-2", nil, nil, nil}}
	if !reflect.DeepEqual(sink.rows, want) {
		t.Errorf("rows: got %#v, want %#v", sink.rows, want)
	}
	if got := e.eu.got; len(got) != 1 || got[0] != "export #sessions" {
		t.Errorf("calls: got %q, want one export", got)
	}
}

func TestExportCutByTheInstanceSaysSoFirst(t *testing.T) {
	e := newEnv(t, healthy(nil), "eu")
	e.eu.export, e.eu.partial = [][]string{{"device.name"}, {"PC-1"}}, true
	var sink recordSink
	n, err := e.w.Export(context.Background(), e.query(t, "#all_windows"), Request{Parameters: map[string]string{}}, &sink)
	if err != nil || n != 1 || sink.start == nil || !sink.start.Truncated {
		t.Errorf("got %d rows, %v, start %+v; want one row, truncated said at start", n, err, sink.start)
	}
}

func TestExportStopsWhenTheSinkFails(t *testing.T) {
	e := newEnv(t, healthy(nil), "eu")
	e.eu.export = [][]string{{"device.name"}, {"PC-1"}, {"PC-2"}, {"PC-3"}}
	sink := recordSink{failAt: 2}
	n, err := e.w.Export(context.Background(), e.query(t, "#all_windows"), Request{Parameters: map[string]string{}}, &sink)
	if !errors.Is(err, errSinkFull) || n != 1 || len(sink.rows) != 2 {
		t.Errorf("got %d rows delivered, %d seen, %v; want the sink's error after its second row", n, len(sink.rows), err)
	}
}

func TestExportRefusalsComeBeforeStart(t *testing.T) {
	e := newEnv(t, healthy(nil))
	var sink recordSink
	_, err := e.w.Export(context.Background(), e.query(t, "#all_windows"), Request{Parameters: map[string]string{}}, &sink)
	if p := problem.From(err); p.Code != problem.Invalid || p.Field != "instance" || sink.start != nil {
		t.Errorf("no instance: got %v, start %+v", err, sink.start)
	}
	_, err = e.w.Export(context.Background(), e.query(t, "#checklist"), Request{Parameters: map[string]string{"device_name": "PC-NOPE"}}, &sink)
	if p := problem.From(err); p.Code != problem.NotFound || sink.start != nil {
		t.Errorf("unknown device: got %v", err)
	}
	e.us.err = errors.New("boom")
	_, err = e.w.Export(context.Background(), e.query(t, "#all_windows"), Request{Parameters: map[string]string{}, Instance: "us"}, &sink)
	if err == nil || sink.start != nil {
		t.Errorf("tenant failure: got %v, start %+v", err, sink.start)
	}
}

func TestEncoders(t *testing.T) {
	cols := []string{"device.name", "n", "ok", "seen", "x"}
	rows := [][]any{{"PC-1", int64(3), true, "2026-11-30T19:58:58Z", nil}, {`a "b", c`, 2.5, false, nil, "y"}}
	for _, tt := range []struct{ format, want string }{
		{events.ExportNDJSON, `{"device.name":"PC-1","n":3,"ok":true,"seen":"2026-11-30T19:58:58Z","x":null}` + "\n" +
			`{"device.name":"a \"b\", c","n":2.5,"ok":false,"seen":null,"x":"y"}` + "\n"},
		{events.ExportCSV, "device.name,n,ok,seen,x\nPC-1,3,true,2026-11-30T19:58:58Z,\n\"a \"\"b\"\", c\",2.5,false,,y\n"},
	} {
		var b bytes.Buffer
		enc, err := NewEncoder(tt.format, &b, cols)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := enc.Row(cols, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil || b.String() != tt.want {
			t.Errorf("%s: got %q (%v), want %q", tt.format, b.String(), err, tt.want)
		}
	}
	var b bytes.Buffer
	enc, _ := NewEncoder(events.ExportCSV, &b, []string{"device.name"})
	if err := enc.Close(); err != nil || b.String() != "device.name\n" {
		t.Errorf("csv without rows: got %q, %v", b.String(), err)
	}
	if _, err := NewEncoder("xml", &b, nil); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("unknown format: got %v", err)
	}
}
