package freshness

import (
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/topic"
)

const (
	spooler = "remote_action.get_printer_status_windows.execution.outputs.SpoolerStatus"
	jobs    = "remote_action.get_printer_status_windows.execution.outputs.StuckJobs"
	ptime   = "remote_action.get_printer_status_windows.execution.time"
	pstatus = "remote_action.get_printer_status_windows.execution.status"
	seen    = topic.LastSeenField
	boot    = "device.boot.days_since_last_full_boot"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func at(ago time.Duration) time.Time { return now.Add(-ago) }

// printing is a query that lists two outputs of one collection, their time and status,
// a device field and the device's last_seen.
var printing = &topic.SavedQuery{ID: "#printing", Dating: map[string]topic.Dating{
	spooler: {Collection: "#get_printer_status_windows", Time: ptime, Status: pstatus},
	jobs:    {Collection: "#get_printer_status_windows", Time: ptime, Status: pstatus},
	boot:    {Time: seen},
	seen:    {Time: seen},
}}

// bootOnly lists a device field without last_seen.
var bootOnly = &topic.SavedQuery{ID: "#boot", Dating: map[string]topic.Dating{boot: {}}}

// row is a printing row: a collection in status at collected, the device last seen at lastSeen.
func row(status string, collected, lastSeen time.Time, spool, stuck any) map[string]any {
	return map[string]any{spooler: spool, jobs: stuck, ptime: collected.Format("2006-01-02 15:04:05"), pstatus: status,
		boot: int64(2), seen: lastSeen.Format(time.RFC3339)}
}

func TestMerge(t *testing.T) {
	day := 24 * time.Hour
	type want struct {
		asOf       time.Time // zero: nil
		lastSeen   time.Time
		stale      bool
		lastKnown  []string
		undated    []string
		unfinished bool
		collected  int
		fields     map[string]any
	}
	tests := []struct {
		name    string
		answers []Answer
		dev     *time.Time
		known   map[string]Known
		want    want
	}{
		{"a successful collection is dated by its time",
			[]Answer{{printing, []map[string]any{row("success", at(5*time.Hour), at(10*time.Minute), "Running", int64(0))}}}, nil, nil,
			want{asOf: at(5 * time.Hour), lastSeen: at(10 * time.Minute), collected: 2, fields: map[string]any{spooler: "Running"}}},
		{"an old collection on a long-unseen device is stale",
			[]Answer{{printing, []map[string]any{row("success", at(22*day), at(21*day), "Running", int64(0))}}}, nil, nil,
			want{asOf: at(22 * day), lastSeen: at(21 * day), stale: true, collected: 2}},
		{"a pending collection: the last known values stand in",
			[]Answer{{printing, []map[string]any{row("waiting_for_device", at(time.Minute), at(3*day), nil, nil)}}}, nil,
			map[string]Known{spooler: {"Running", at(3*day + time.Hour)}, jobs: {float64(0), at(3*day + time.Hour)}},
			want{asOf: at(3*day + time.Hour), lastSeen: at(3 * day), stale: true, lastKnown: []string{spooler, jobs}, unfinished: true,
				fields: map[string]any{spooler: "Running", jobs: float64(0)}}},
		{"a pending collection without last known values: no value, undated nothing",
			[]Answer{{printing, []map[string]any{row("pending", at(time.Minute), at(3*day), nil, nil)}}}, nil, nil,
			want{asOf: at(3 * day), lastSeen: at(3 * day), stale: true, unfinished: true, fields: map[string]any{spooler: nil}}},
		{"the tenant shows an older value the last known one dates",
			[]Answer{{printing, []map[string]any{row("in_progress", at(time.Minute), at(time.Minute), "Running", int64(0))}}}, nil,
			map[string]Known{spooler: {"Running", at(5 * time.Hour)}, jobs: {float64(0), at(5 * time.Hour)}},
			want{asOf: at(5 * time.Hour), lastSeen: at(time.Minute), unfinished: true}},
		{"an older value nothing dates is undated",
			[]Answer{{printing, []map[string]any{row("in_progress", at(time.Minute), at(time.Minute), "Running", int64(0))}}}, nil, nil,
			want{asOf: at(time.Minute), lastSeen: at(time.Minute), undated: []string{spooler, jobs}, unfinished: true}},
		{"a collection later than last_seen moves last_seen",
			[]Answer{{printing, []map[string]any{row("success", at(10*time.Second), at(time.Minute), "Running", int64(0))}}}, nil, nil,
			want{asOf: at(time.Minute), lastSeen: at(10 * time.Second), collected: 2}},
		{"device data without last_seen is dated by the resolved device",
			[]Answer{{bootOnly, []map[string]any{{boot: int64(4)}}}}, ptr(at(2 * time.Hour)), nil,
			want{asOf: at(2 * time.Hour), lastSeen: at(2 * time.Hour)}},
		{"device data with nothing to date it is undated",
			[]Answer{{bootOnly, []map[string]any{{boot: int64(4)}}}}, nil, nil,
			want{undated: []string{boot}}},
		{"a query without a row dates nothing",
			[]Answer{{bootOnly, nil}}, ptr(at(2 * time.Hour)), nil,
			want{lastSeen: at(2 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Merge(Input{Answers: tt.answers, LastSeen: tt.dev, Known: tt.known, Now: now, MaxAge: day})
			w := tt.want
			if !sameTime(r.DataAsOf, w.asOf) || !sameTime(r.LastSeen, w.lastSeen) {
				t.Errorf("data as of %v, last seen %v; want %v and %v", r.DataAsOf, r.LastSeen, w.asOf, w.lastSeen)
			}
			if r.DataAsOf != nil && r.LastSeen != nil && r.DataAsOf.After(*r.LastSeen) {
				t.Errorf("data as of %v is later than last seen %v", r.DataAsOf, r.LastSeen)
			}
			if r.Stale != w.stale || r.Unfinished != w.unfinished || len(r.Collected) != w.collected {
				t.Errorf("stale %v, unfinished %v, collected %v; want %v, %v, %d", r.Stale, r.Unfinished, r.Collected, w.stale, w.unfinished, w.collected)
			}
			var lastKnown []string
			for _, f := range []string{spooler, jobs} {
				if r.Times[f].LastKnown {
					lastKnown = append(lastKnown, f)
					if r.Times[f].LatestStatus == "" || r.Times[f].AsOf == nil {
						t.Errorf("%s: last known without its time or the latest status: %+v", f, r.Times[f])
					}
				}
			}
			if !equal(lastKnown, w.lastKnown) || !equal(r.Undated, w.undated) {
				t.Errorf("last known %v, undated %v; want %v, %v", lastKnown, r.Undated, w.lastKnown, w.undated)
			}
			for f, v := range w.fields {
				if got, ok := r.Fields[f]; !ok || got != v {
					t.Errorf("field %s: got %#v, want %#v", f, got, v)
				}
			}
			if _, dated := r.Times[pstatus]; dated {
				t.Error("the execution's status is dated")
			}
		})
	}
}

func TestLaterQueryWins(t *testing.T) {
	r := Merge(Input{Now: now, MaxAge: time.Hour, LastSeen: ptr(at(3 * time.Hour)), Answers: []Answer{
		{printing, []map[string]any{row("success", at(2*time.Hour), at(time.Hour), "Running", int64(0))}},
		{bootOnly, []map[string]any{{boot: int64(9)}}},
	}})
	if r.Fields[boot] != int64(9) || !sameTime(r.Times[boot].AsOf, at(3*time.Hour)) {
		t.Errorf("boot: got %v as of %v, want the second query's 9 dated by the resolved last_seen", r.Fields[boot], r.Times[boot].AsOf)
	}
	if !sameTime(r.DataAsOf, at(3*time.Hour)) || !r.Stale {
		t.Errorf("data as of %v stale %v, want 3h ago, stale", r.DataAsOf, r.Stale)
	}
}

func TestFieldTimesAreUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	r := Merge(Input{Now: now, MaxAge: time.Hour, LastSeen: ptr(at(time.Hour).In(paris)), Answers: []Answer{{bootOnly, []map[string]any{{boot: int64(1)}}}}})
	for f, ft := range r.Times {
		if ft.AsOf != nil && ft.AsOf.Location() != time.UTC {
			t.Errorf("%s: %v is not UTC", f, ft.AsOf)
		}
	}
	if r.DataAsOf.Location() != time.UTC || r.LastSeen.Location() != time.UTC {
		t.Errorf("data as of %v, last seen %v: want UTC", r.DataAsOf, r.LastSeen)
	}
}

func ptr(t time.Time) *time.Time { return &t }

func sameTime(got *time.Time, want time.Time) bool {
	if want.IsZero() {
		return got == nil
	}
	return got != nil && got.Equal(want)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
