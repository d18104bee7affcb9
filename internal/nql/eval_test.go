package nql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		q       string
		params  map[string]string
		headers []string // checked when set
		rows    [][]Value
	}{
		{
			name: "request_id in list",
			q: `remote_action.executions past 24h
				| where request_id in ["req-1", $other]
				| list request_id, device.name, status`,
			params:  map[string]string{"other": "req-2"},
			headers: []string{"remote_action.executions.request_id", "device.name", "remote_action.executions.status"},
			rows: [][]Value{
				{"req-1", "PC-1", "success"}, {"req-2", "PC-2", "in_progress"}, {"req-1", "PC-2", "failure"},
			},
		},
		{
			name: "not in",
			q:    `remote_action.executions | where request_id !in ["req-1"] | list request_id`,
			rows: [][]Value{{"req-2"}, {"req-3"}},
		},
		{
			name: "summarize by with sort",
			q: `devices | summarize n = count(), mem = hardware.memory.sum() / 1000000000 by operating_system.platform
				| sort n desc`,
			headers: []string{"device.operating_system.platform", "n", "mem"},
			rows:    [][]Value{{"Windows", int64(5), 72.0}, {"macOS", int64(1), 16.0}},
		},
		{
			name:    "summarize over events by two fields, where on a summarize name",
			q:       `session.events | summarize n = count() by user.name, device.name | where n >= 1 and user.name == "bob" | list device.name, n`,
			headers: []string{"device.name", "n"},
			rows:    [][]Value{{"d4", int64(1)}, {"d1", int64(1)}},
		},
		{
			name: "summarize without by",
			q:    `device_performance.events | summarize total = system_drive_free_space.sum(), hi = cpu_usage.max(), lo = system_drive_free_space.min()`,
			rows: [][]Value{{int64(110e9), 12.5, int64(10e9)}},
		},
		{
			name: "sort asc is stable, limit",
			q:    `devices | sort boot.days_since_last_full_boot asc | list name | limit 4`,
			rows: [][]Value{{"PC-4"}, {"PC-5"}, {"PC-6"}, {"MAC-3"}},
		},
		{
			name: "sort puts nulls last in both directions",
			q:    `devices | sort hardware.model desc | list name, hardware.model | limit 2`,
			rows: [][]Value{{"PC-1", "X1"}, {"PC-2", nil}},
		},
		{
			name: "sort on a computed field",
			q:    `devices | include device_performance.events | compute n = count() | sort n desc | list name, n | limit 2`,
			rows: [][]Value{{"PC-1", int64(3)}, {"PC-2", int64(1)}},
		},
		{
			name: "limit without sort stops early",
			q:    `devices | list name | limit 2`,
			rows: [][]Value{{"PC-1"}, {"PC-2"}},
		},
		{
			name: "contains is case-insensitive",
			q:    `devices | where name contains "c-" | list name`,
			rows: [][]Value{{"PC-1"}, {"PC-2"}, {"MAC-3"}, {"PC-4"}, {"PC-5"}, {"PC-6"}},
		},
		{
			name: "or and not",
			q:    `devices | where !(name == "PC-1" or name == "pc-2") and not operating_system.platform == "macOS" | list name`,
			rows: [][]Value{{"PC-4"}, {"PC-5"}, {"PC-6"}},
		},
		{
			name: "wildcard equality",
			q:    `devices | where name == "pc-*" and name != "*-1" | list name`,
			rows: [][]Value{{"PC-2"}, {"PC-4"}, {"PC-5"}, {"PC-6"}},
		},
		{
			name: "a lone * matches any value but null",
			q:    `devices | where hardware.model == "*" | list name`,
			rows: [][]Value{{"PC-1"}},
		},
		{
			name: "wildcard in the middle",
			q:    `package.installed_packages | where package.name == "Micro*Pro*nal" | list package.name`,
			rows: [][]Value{{"Microsoft Office Professional"}},
		},
		{
			name: "null equals null only",
			q:    `devices | where hardware.model == null | list name`,
			rows: [][]Value{{"PC-2"}, {"MAC-3"}, {"PC-4"}, {"PC-5"}, {"PC-6"}},
		},
		{
			name: "a missing value never matches a comparison",
			q:    `devices | where hardware.model == "X1" or hardware.model < "Z" or hardware.model contains "X" | list name`,
			rows: [][]Value{{"PC-1"}},
		},
		{
			name: "!= matches a missing value",
			q:    `devices | where hardware.model != "X1" | list name | limit 1`,
			rows: [][]Value{{"PC-2"}},
		},
		{
			name: "negated missing value stays unmatched",
			q:    `devices | where !remote_action.get_outlook_online_windows.execution.status | list name`,
		},
		{
			name: "with keeps only devices with rows",
			q:    `devices | with package.installed_packages | compute n = count() | list name, n`,
			rows: [][]Value{{"PC-1", int64(2)}, {"PC-2", int64(2)}},
		},
		{
			name: "include keeps every device",
			q:    `devices | include package.installed_packages | compute n = count(), v = package.version.max() | list name, n, v`,
			rows: [][]Value{
				{"PC-1", int64(2), "15.0.1"}, {"PC-2", int64(2), "16.0.1"}, {"MAC-3", int64(0), nil},
				{"PC-4", int64(0), nil}, {"PC-5", int64(0), nil}, {"PC-6", int64(0), nil},
			},
		},
		{
			name: "with without compute filters by surviving rows",
			q:    `devices | with package.installed_packages | where package.name == "Microsoft Teams" | list name`,
			rows: [][]Value{{"PC-1"}},
		},
		{
			name: "where on a computed field",
			q: `devices | include device_performance.events during past 24h
				| compute free = system_drive_free_space.avg() / 1000000000
				| where free > 30 | list name, free`,
			rows: [][]Value{{"PC-1", 40.0}},
		},
		{
			name: "primary where between join wheres",
			q: `devices | with session.events | where user.name == "alice" | where name != "PC-1"
				| where session.events.end_time > "2024-06-08" | compute n = count() | list name, n`,
			rows: [][]Value{{"MAC-3", int64(1)}, {"PC-5", int64(1)}},
		},
		{
			name: "last takes the latest event",
			q: `devices | include device_performance.events
				| compute last_free = system_drive_free_space.last(), first_free = system_drive_free_space.min()
				| list name, last_free, first_free | limit 2`,
			rows: [][]Value{{"PC-1", int64(50e9), int64(10e9)}, {"PC-2", int64(20e9), int64(20e9)}},
		},
		{
			name: "arithmetic types",
			q: `devices | where name == "PC-1"
				| compute a = boot.days_since_last_full_boot + 1, b = boot.days_since_last_full_boot / 4, c = 1.5 * 2, d = boot.days_since_last_full_boot - hardware.model, e = -boot.days_since_last_full_boot
				| list a, b, c, d, e`,
			rows: [][]Value{{int64(13), 3.0, 3.0, nil, int64(-12)}},
		},
		{
			name: "division by zero is null",
			q:    `devices | where name == "PC-4" | compute x = 1 / boot.days_since_last_full_boot | list x`,
			rows: [][]Value{{nil}},
		},
		{
			name: "untyped outputs compare as numbers or text",
			q: `devices | where remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds > 3
				and remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount == "2" | list name`,
			rows: [][]Value{{"PC-1"}},
		},
		{
			name: "timeframe boundaries: From inclusive, To exclusive",
			q:    `devices during past 7d | list name`,
			rows: [][]Value{{"PC-1"}, {"PC-2"}, {"PC-4"}, {"PC-5"}},
		},
		{
			name: "timeframe in minutes on events",
			q:    `device_performance.events past 60min | list device_performance.events.system_drive_free_space`,
			rows: [][]Value{{int64(50e9)}},
		},
		{
			name: "datetime literal",
			q:    `devices | where last_seen >= "2024-06-10 09:00:00" | list name`,
			rows: [][]Value{{"PC-1"}, {"PC-4"}, {"PC-6"}},
		},
		{
			name: "users joined to sessions by a device field",
			q:    `users | with session.events past 7d | where device.name == "d1" | list name`,
			rows: [][]Value{{"alice"}, {"bob"}},
		},
		{
			name:    "alerts with documented spellings",
			q:       `alert.alerts | where status == "open" | list alert.monitor.name, monitor.priority, trigger_time`,
			headers: []string{"alert.monitor.name", "alert.monitor.priority", "alert.trigger_time"},
			rows:    [][]Value{{"High CPU", "high", ago(hour)}},
		},
		{
			name: "default fields and computed names without list",
			q:    `devices | where name == "PC-4" | compute gb = hardware.memory / 1000000000`,
			headers: []string{"device.name", "device.collector.uid", "device.entity",
				"device.operating_system.platform", "device.operating_system.name",
				"device.hardware.type", "device.last_seen", "gb"},
			rows: [][]Value{{"PC-4", "c-d4", "HQ", "Windows", "Windows 11", "laptop", ago(3 * hour), 8.0}},
		},
		{
			name:   "parameter converted to the field type",
			q:      `devices | where boot.days_since_last_full_boot > $days and last_seen > $since | list name`,
			params: map[string]string{"days": "10", "since": "2024-06-01T00:00:00Z"},
			rows:   [][]Value{{"PC-1"}},
		},
		{
			name:   "a parameter with * is literal",
			q:      `devices | where name == $n | list name`,
			params: map[string]string{"n": "PC-*"},
		},
		{
			name: "limit 0",
			q:    `devices | limit 0`,
		},
		{
			name: "device.devices table spelling",
			q:    `device.devices | where name == "PC-2" | list name`,
			rows: [][]Value{{"PC-2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, fixture(), tt.q, tt.params)
			if tt.headers != nil && !slices.Equal(res.Headers, tt.headers) {
				t.Errorf("headers: got %q, want %q", res.Headers, tt.headers)
			}
			if got, want := showRows(res.Rows), showRows(tt.rows); got != want {
				t.Errorf("rows:\ngot\n%swant\n%s", got, want)
			}
			if res.Rows == nil {
				t.Errorf("rows: got nil, want an empty slice")
			}
		})
	}
}

func TestRunMaxRows(t *testing.T) {
	p, err := Compile(`devices | sort name desc | list name | limit 5`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		max  int
		want string
	}{
		{0, "[\"PC-6\"]\n[\"PC-5\"]\n[\"PC-4\"]\n[\"PC-2\"]\n[\"PC-1\"]\n"},
		{2, "[\"PC-6\"]\n[\"PC-5\"]\n"},
		{9, "[\"PC-6\"]\n[\"PC-5\"]\n[\"PC-4\"]\n[\"PC-2\"]\n[\"PC-1\"]\n"},
	} {
		res, err := p.Run(context.Background(), fixture(), nil, RunOptions{Now: testNow, MaxRows: tt.max})
		if err != nil {
			t.Fatal(err)
		}
		if got := showRows(res.Rows); got != tt.want {
			t.Errorf("MaxRows %d: got\n%swant\n%s", tt.max, got, tt.want)
		}
	}
}

func TestRunParamErrors(t *testing.T) {
	tests := []struct {
		q      string
		params map[string]string
		name   string // the parameter the error names
		msg    string // substring of the error
	}{
		{`devices | where name == $device_name`, nil, "device_name", "missing"},
		{`devices | where name == $a or name == $b`, map[string]string{"a": "x"}, "b", "missing"},
		{`devices | where hardware.memory > $m`, map[string]string{"m": "lots"}, "m", `cannot convert "lots" to a number to compare with hardware.memory`},
		{`devices | where last_seen > $t`, map[string]string{"t": "yesterday"}, "t", "to a date-time"},
		{`devices | where boot.days_since_last_full_boot in [1, $d]`, map[string]string{"d": "one"}, "d", "a number"},
		{`devices | include package.installed_packages | compute n = count() | where n == $n`, map[string]string{"n": "x"}, "n", "a number"},
	}
	for _, tt := range tests {
		p, err := Compile(tt.q, nil)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.q, err)
		}
		_, err = p.Run(context.Background(), fixture(), tt.params, RunOptions{Now: testNow})
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got error %v, want a *ParamError", tt.q, err)
			continue
		}
		if pe.Name != tt.name || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "$"+tt.name) {
			t.Errorf("%q: got %q (name %q), want name %q and %q", tt.q, err, pe.Name, tt.name, tt.msg)
		}
	}
}

// bigSource has n devices and cancels ctx after cancelAt rows when cancel is set.
type bigSource struct {
	n        int
	cancelAt int
	cancel   context.CancelFunc
	served   int
}

func (s *bigSource) Scan(ctx context.Context, table string, _ Window, fn func(Row) error) error {
	row := mapRow{"device.name": "x", "device.uid": "u"}
	for i := 0; i < s.n; i++ {
		s.served++
		if s.cancel != nil && i == s.cancelAt {
			s.cancel()
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

func (s *bigSource) Related(ctx context.Context, obj Row, table string, _ Window, fn func(Row) error) error {
	return fn(mapRow{"package.name": "p"})
}

func TestRunCancellation(t *testing.T) {
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p, _ := Compile(`devices`, nil)
		if _, err := p.Run(ctx, fixture(), nil, RunOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	for _, q := range []string{
		`devices | where name == "x"`,
		`devices | include package.installed_packages | compute n = count()`,
		`devices | summarize n = count() by name`,
	} {
		t.Run(q, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src := &bigSource{n: 100000, cancelAt: 1000, cancel: cancel}
			p, err := Compile(q, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Run(ctx, src, nil, RunOptions{})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if src.served > 1000+2*ctxEvery {
				t.Errorf("served %d rows after cancelling at 1000, want at most %d", src.served, 1000+2*ctxEvery)
			}
		})
	}
}

// errSource fails every call.
type errSource struct{ err error }

func (s errSource) Scan(context.Context, string, Window, func(Row) error) error { return s.err }
func (s errSource) Related(context.Context, Row, string, Window, func(Row) error) error {
	return s.err
}

func TestRunSourceError(t *testing.T) {
	boom := errors.New("boom")
	p, _ := Compile(`devices`, nil)
	if _, err := p.Run(context.Background(), errSource{boom}, nil, RunOptions{}); !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

func TestRunUsesIndexer(t *testing.T) {
	tests := []struct {
		q       string
		params  map[string]string
		lookups int
		scans   int
		rows    int
	}{
		{`devices | where name == $n | list name`, map[string]string{"n": "pc-1"}, 1, 0, 1},
		{`devices | where device.name in ["PC-1", "PC-2"] and boot.days_since_last_full_boot > 5 | list name`, nil, 1, 0, 1},
		{`devices | where "PC-2" == name | list name`, nil, 1, 0, 1},
		// Not indexed: fall back to Scan.
		{`devices | where collector.uid == "c-d1" | list name`, nil, 0, 1, 1},
		// Wildcards and other operators do not use the index.
		{`devices | where name == "PC-*" | list name`, nil, 0, 1, 5},
		{`devices | where name != "PC-1" | list name`, nil, 0, 1, 5},
		{`devices | where name == "PC-1" or name == "PC-2" | list name`, nil, 0, 1, 2},
		// The index only serves the first where; a where on the joined table is not it.
		{`devices | with session.events | where device.name == "PC-1" | list name`, nil, 1, 0, 1},
		{`devices | with session.events | where user.name == "bob" | list name`, nil, 0, 1, 2},
		{`remote_action.executions | where request_id == "req-1" | list device.name`, nil, 1, 0, 2},
	}
	for _, tt := range tests {
		src := &indexedSource{memSource: fixture(), indexed: map[string]bool{
			"devices/device.name": true,
			"remote_action.executions/remote_action.executions.request_id": true,
		}}
		res := run(t, src, tt.q, tt.params)
		if src.lookups != tt.lookups || src.scans != tt.scans || len(res.Rows) != tt.rows {
			t.Errorf("%q: got %d lookups, %d scans, %d rows; want %d, %d, %d",
				tt.q, src.lookups, src.scans, len(res.Rows), tt.lookups, tt.scans, tt.rows)
		}
	}
}

// relatedIndexedSource answers LookupRelated for session.events' user.name with
// every device (the superset the contract allows), counting its lookups.
type relatedIndexedSource struct {
	*memSource
	lookups int
}

func (s *relatedIndexedSource) LookupRelated(_ context.Context, table, related, field string, _ []string) ([]Row, bool) {
	if table != "devices" || related != "session.events" || field != "user.name" {
		return nil, false
	}
	s.lookups++
	var out []Row
	for _, r := range s.tables[table] {
		out = append(out, r)
	}
	return out, true
}

func TestRunUsesRelatedIndexer(t *testing.T) {
	tests := []struct {
		q       string
		lookups int
	}{
		{`devices | with session.events | where user.name == "bob" | list name`, 1},
		{`devices during past 7d | with session.events past 7d | where user.name in ["bob", "alice"] | list name`, 1},
		// A where on a device field after the with, and an include, which keeps devices
		// without a match, do not use it.
		{`devices | with session.events | where device.name == "PC-1" | list name`, 0},
		{`devices | include session.events | where user.name == "bob" | compute n = count() | list name, n`, 0},
		{`devices | with session.events | where user.name != "bob" | list name`, 0},
	}
	for _, tt := range tests {
		want := showRows(run(t, fixture(), tt.q, nil).Rows)
		src := &relatedIndexedSource{memSource: fixture()}
		got := showRows(run(t, src, tt.q, nil).Rows)
		if src.lookups != tt.lookups || got != want {
			t.Errorf("%q: got %d lookups and rows %s; want %d and %s", tt.q, src.lookups, got, tt.lookups, want)
		}
	}
}

func TestPlanConcurrentRuns(t *testing.T) {
	p, err := Compile(guideQuery(t, "diagnose_slow_pc_issues"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := showRows(run(t, fixture(), guideQuery(t, "diagnose_slow_pc_issues"), map[string]string{"device_name": "PC-1"}).Rows)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			src := fixture()
			for k := 0; k < 50; k++ {
				res, err := p.Run(context.Background(), src, map[string]string{"device_name": "PC-1"}, RunOptions{Now: testNow})
				if err != nil {
					errs <- err
					return
				}
				if got := showRows(res.Rows); got != want {
					errs <- errors.New("got " + got + ", want " + want)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestRunStringTimes(t *testing.T) {
	src := &memSource{tables: map[string][]mapRow{"devices": {
		{"device.name": "text", "device.last_seen": "2024-06-10 11:00:00"},
		{"device.name": "old", "device.last_seen": "2024-06-01 11:00:00"},
		{"device.name": "junk", "device.last_seen": "yesterday"},
	}}}
	res := run(t, src, `devices during past 1d | list name`, nil)
	if got, want := showRows(res.Rows), "[\"text\"]\n"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRunSummarizeLimits(t *testing.T) {
	p, err := Compile(`session.events | summarize n = count() by device.name | limit 3`, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), fixture(), nil, RunOptions{Now: testNow, MaxRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := showRows(res.Rows), "[\"d1\", i2]\n[\"d2\", i1]\n"; got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestRunDefaultNow(t *testing.T) {
	src := &memSource{tables: map[string][]mapRow{"devices": {
		{"device.name": "fresh", "device.last_seen": time.Now().Add(-time.Minute)},
		{"device.name": "stale", "device.last_seen": time.Now().Add(-2 * time.Hour)},
	}}}
	p, _ := Compile(`devices during past 1h | list name`, nil)
	res, err := p.Run(context.Background(), src, nil, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := showRows(res.Rows), "[\"fresh\"]\n"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestStreamMatchesRunAndStopsOnError(t *testing.T) {
	src := fixture()
	for _, q := range []string{
		`devices | list name`,
		`devices | sort name desc | list name | limit 3`,
		`devices | list name | limit 2`,
	} {
		p, err := Compile(q, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.Run(context.Background(), src, nil, RunOptions{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]Value
		err = p.Stream(context.Background(), src, nil, RunOptions{Now: testNow}, func(row []Value) error {
			got = append(got, row)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if showRows(got) != showRows(want.Rows) {
			t.Errorf("%s: Stream gave %s, Run gave %s", q, showRows(got), showRows(want.Rows))
		}
		stop := errors.New("enough")
		calls := 0
		err = p.Stream(context.Background(), src, nil, RunOptions{Now: testNow}, func([]Value) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("%s: fn error: got %v after %d calls, want it returned after 1", q, err, calls)
		}
	}
}

func TestRunDynamicFields(t *testing.T) {
	src := &memSource{tables: map[string][]mapRow{"devices": {
		{"device.name": "a", "device.#department": "Sales", "device.score.device_health": 7.5},
		{"device.name": "b", "device.#department": "IT", "device.score.device_health.restart": int64(10)},
	}}}
	res := run(t, src, `devices
| where #department == "sales" or device.score.device_health > 5
| list name, device.#department, score.device_health, device.score.device_health.restart`, nil)
	if got, want := showRows(res.Rows), "[\"a\", \"Sales\", f7.5, null]\n"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if !slices.Equal(res.Headers, []string{"device.name", "device.#department", "device.score.device_health",
		"device.score.device_health.restart"}) {
		t.Errorf("headers %v", res.Headers)
	}
	for _, bad := range []string{"devices | list device.#", "devices | list device.score.", "devices | list device.#a-b"} {
		if _, err := Compile(bad, DefaultSchema()); err == nil {
			t.Errorf("Compile(%q): no error", bad)
		}
	}
	s := DefaultSchema()
	if !s.IsDeviceField("device.#cost_center") || !s.IsDeviceField("device.score.x.y") || s.IsDeviceField("device.score") {
		t.Error("IsDeviceField does not take the dynamic fields")
	}
}
