package topics_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// bigFleet has more users, and more Windows devices, than NQL execute returns (1000).
const bigFleet = 1450

// nqlAnswerTrunc is POST /api/v1/nql/{query_id} with the truncation fields.
type nqlAnswerTrunc struct {
	Rows      []map[string]any `json:"rows"`
	Source    string           `json:"source"`
	Instance  string           `json:"instance"`
	Truncated bool             `json:"truncated"`
	RowLimit  int              `json:"row_limit"`
}

// exportResult is an export as a client reads it.
type exportResult struct {
	status  int
	header  http.Header
	trailer http.Header
	lines   []string // NDJSON lines, or CSV records joined by "|"
	err     error    // reading the body
	problem map[string]any
}

// export posts body to the export endpoint of query on srv and reads the answer whole.
func (e *env) export(srv *httptest.Server, query, body string) exportResult {
	e.t.Helper()
	resp := e.postExport(context.Background(), srv, query, body)
	defer resp.Body.Close()
	res := exportResult{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&res.problem)
		return res
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		recs, err := csv.NewReader(resp.Body).ReadAll()
		for _, r := range recs {
			res.lines = append(res.lines, strings.Join(r, "|"))
		}
		res.err = err
	} else {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			res.lines = append(res.lines, sc.Text())
		}
		res.err = sc.Err()
	}
	res.trailer = resp.Trailer
	return res
}

func (e *env) postExport(ctx context.Context, srv *httptest.Server, query, body string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/nql/%23"+query+"/export", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", e.key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) info(tenant string) nxsim.Info {
	e.t.Helper()
	info, err := nxsim.NewControlClient(e.sim.TenantURL(tenant), nil).Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// TestNQLSaysWhenTheTenantCutTheRowsAndTheExportHasThemAll: against nxsim tenants of
// 1450 and 145 users, a saved query answered live says `truncated` at NQL execute's
// 1000 rows and not below; its export returns every row (as many as nxsim has users,
// each once), in NDJSON and CSV, and says how many in the trailer; a licence cut is
// flagged before the first row.
func TestNQLSaysWhenTheTenantCutTheRowsAndTheExportHasThemAll(t *testing.T) {
	e := newEnv(t, envOptions{fleetSize: bigFleet})
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)

	var a nqlAnswerTrunc
	resp := e.do(http.MethodPost, "/api/v1/nql/%23dexbridge_discovery_users", e.key, `{"instance":"eu"}`, &a)
	if resp.StatusCode != 200 || len(a.Rows) != 1000 || !a.Truncated || a.RowLimit != 1000 || a.Source != "live" {
		t.Errorf("users of eu: got %d, %d rows, truncated %v, row limit %d; want 1000 rows, truncated at 1000", resp.StatusCode, len(a.Rows), a.Truncated, a.RowLimit)
	}
	usUsers := e.info("us").Users
	var raw map[string]any
	resp = e.do(http.MethodPost, "/api/v1/nql/%23dexbridge_discovery_users", e.key, `{"instance":"us"}`, &raw)
	if _, has := raw["row_limit"]; resp.StatusCode != 200 || len(raw["rows"].([]any)) != usUsers || raw["truncated"] != false || has {
		t.Errorf("users of us: got %d, %d rows, truncated %v, row_limit present %v; want all %d, not truncated", resp.StatusCode,
			len(raw["rows"].([]any)), raw["truncated"], has, usUsers)
	}

	// Every row through the export: as many as nxsim has users, each once.
	euUsers := e.info("eu").Users
	for _, format := range []string{"ndjson", "csv"} {
		res := e.export(srv, "dexbridge_discovery_users", `{"instance":"eu","format":"`+format+`"}`)
		if res.status != 200 || res.err != nil {
			t.Fatalf("%s export: got %d %v %v", format, res.status, res.problem, res.err)
		}
		rows := res.lines
		names := map[string]bool{}
		if format == "csv" {
			if rows[0] != "user.name|user.upn|user.sid|user.ad.email_address|user.ad.full_name" {
				t.Errorf("csv header: got %q", rows[0])
			}
			rows = rows[1:]
			for _, r := range rows {
				names[strings.Split(r, "|")[0]] = true
			}
		} else {
			for _, l := range rows {
				var row map[string]any
				if err := json.Unmarshal([]byte(l), &row); err != nil || len(row) != 5 {
					t.Fatalf("ndjson line %q: %v", l, err)
				}
				names[row["user.name"].(string)] = true
			}
		}
		if len(rows) != euUsers || len(names) != euUsers {
			t.Errorf("%s export: got %d rows, %d distinct users, want %d", format, len(rows), len(names), euUsers)
		}
		if got := res.trailer.Get("Dexbridge-Rows"); got != strconv.Itoa(euUsers) {
			t.Errorf("%s export: trailer Dexbridge-Rows %q, want %d", format, got, euUsers)
		}
		if res.header.Get("Dexbridge-Truncated") != "false" || res.header.Get("Dexbridge-Instance") != "eu" {
			t.Errorf("%s export: headers %v", format, res.header)
		}
	}

	// The query: the Windows devices of the last 30 days, cut at 1000 live and
	// whole through the export.
	res := e.export(srv, "dexbridge_discovery_devices", `{"parameters":{"platform":"Windows"},"instance":"eu"}`)
	if res.status != 200 || res.err != nil {
		t.Fatalf("devices export: %d %v %v", res.status, res.problem, res.err)
	}
	for _, l := range res.lines {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatal(err)
		}
		if seen, _ := row["device.last_seen"].(string); !isRFC3339UTC(seen) {
			t.Fatalf("export row %s: device.last_seen %q, want RFC 3339 UTC", l, seen)
		}
		if _, ok := row["device.hardware.memory"].(float64); !ok {
			t.Fatalf("export row %s: device.hardware.memory is not a number", l)
		}
	}
	resp = e.do(http.MethodPost, "/api/v1/nql/%23dexbridge_discovery_devices", e.key, `{"parameters":{"platform":"Windows"},"instance":"eu"}`, &a)
	if n := len(res.lines); n <= 1000 || resp.StatusCode != 200 || len(a.Rows) != 1000 || !a.Truncated {
		t.Errorf("Windows devices: export %d rows, live %d rows truncated %v; want more than 1000 exported and the live answer cut", n, len(a.Rows), a.Truncated)
	}

	// A licence cut: flagged in the headers, the rows are the prefix the tenant gave.
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/exports/settings", nxsim.ExportSettings{DelayMS: 10, RowLimit: 100}, nil)
	res = e.export(srv, "dexbridge_discovery_users", `{"instance":"eu"}`)
	if res.status != 200 || res.header.Get("Dexbridge-Truncated") != "true" || len(res.lines) != 100 || res.trailer.Get("Dexbridge-Rows") != "100" {
		t.Errorf("licence cut: got %d, truncated %q, %d rows, trailer %v", res.status, res.header.Get("Dexbridge-Truncated"), len(res.lines), res.trailer)
	}
}

func isRFC3339UTC(s string) bool {
	t, err := time.Parse(time.RFC3339, s)
	return err == nil && strings.HasSuffix(s, "Z") && t.Location() == time.UTC
}

// downloadWatch follows the results file downloads a topics worker makes.
type downloadWatch struct {
	base  http.RoundTripper
	mu    sync.Mutex
	files []*watchedFile
}

type watchedFile struct {
	length int64
	read   atomic.Int64
	eof    atomic.Bool
	closed atomic.Bool
	io.ReadCloser
}

func (f *watchedFile) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	f.read.Add(int64(n))
	if errors.Is(err, io.EOF) {
		f.eof.Store(true)
	}
	return n, err
}

func (f *watchedFile) Close() error {
	f.closed.Store(true)
	return f.ReadCloser.Close()
}

func (w *downloadWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/_files/exports/") {
		return resp, err
	}
	f := &watchedFile{length: resp.ContentLength, ReadCloser: resp.Body}
	resp.Body = f
	w.mu.Lock()
	w.files = append(w.files, f)
	w.mu.Unlock()
	return resp, nil
}

func (w *downloadWatch) downloads() []*watchedFile {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*watchedFile(nil), w.files...)
}

// TestExportStopsWhenTheClientGoes: a client that reads the first rows of an export
// and hangs up stops the worker's download of the tenant's results file: the file is
// closed before its end. nxsim serves it slowly, as far storage would, so that the
// whole file cannot have arrived before the client went.
func TestExportStopsWhenTheClientGoes(t *testing.T) {
	watch := &downloadWatch{base: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(watch.base.(*http.Transport).CloseIdleConnections)
	e := newEnv(t, envOptions{fleetSize: bigFleet, transport: watch})
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/exports/settings", nxsim.ExportSettings{DelayMS: 10, FileBytesPerSecond: 4 << 10}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	resp := e.postExport(ctx, srv, "dexbridge_discovery_users", `{"instance":"eu"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"user.name"`) {
		t.Fatalf("first row: %q %v", line, err)
	}
	cancel()
	_ = resp.Body.Close()

	var f *watchedFile
	testenv.Eventually(t, "the worker to close the results file", func() bool {
		if d := watch.downloads(); len(d) == 1 {
			f = d[0]
		}
		return f != nil && f.closed.Load()
	})
	if f.eof.Load() || f.length <= 0 || f.read.Load() >= f.length {
		t.Errorf("the download ran to its end (%d of %d bytes read, end of file %v) although the client went", f.read.Load(), f.length, f.eof.Load())
	}
	t.Logf("results file closed after %d of %d bytes", f.read.Load(), f.length)

	// The stream's slot is free again: the next export runs (at full speed).
	discoverytest.Control(t, e.sim, "eu", http.MethodPut, "/_nxsim/exports/settings", nxsim.ExportSettings{DelayMS: 10}, nil)
	if res := e.export(srv, "dexbridge_discovery_users", `{"instance":"eu"}`); res.status != 200 || len(res.lines) != e.info("eu").Users {
		t.Errorf("next export: got %d with %d rows", res.status, len(res.lines))
	}
}

// TestExportRefusals: bad input to the export is a 400 problem naming it, before any
// call to the tenant.
func TestExportRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	discoverytest.Control(t, e.sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
	tests := []struct {
		name, query, body string
		status            int
		code, field       string
	}{
		{"unknown format", "dexbridge_discovery_users", `{"instance":"eu","format":"xml"}`, 400, "invalid_request", "format"},
		{"format not a string", "dexbridge_discovery_users", `{"instance":"eu","format":1}`, 400, "invalid_request", "format"},
		{"unknown field", "dexbridge_discovery_users", `{"instance":"eu","all":true}`, 400, "invalid_request", "all"},
		{"no instance, two configured", "dexbridge_discovery_users", `{}`, 400, "invalid_request", "instance"},
		{"unknown instance", "dexbridge_discovery_users", `{"instance":"ap"}`, 400, "invalid_request", "instance"},
		{"missing parameter", "dexbridge_discovery_devices", `{"instance":"eu"}`, 400, "invalid_request", "parameters.platform"},
		{"bad query id", "No-Such", `{}`, 400, "invalid_request", "query_id"},
		{"unknown query", "no_such_query", `{}`, 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.export(srv, tt.query, tt.body)
			if res.status != tt.status || res.problem["code"] != tt.code || (tt.field != "" && res.problem["field"] != tt.field) {
				t.Errorf("got %d %v, want %d %s naming %q", res.status, res.problem, tt.status, tt.code, tt.field)
			}
		})
	}
	if c := discoverytest.Counters(t, e.sim, "eu"); c.Endpoints["POST /api/v1/nql/export"] != 0 {
		t.Errorf("the tenant got %d exports, want none", c.Endpoints["POST /api/v1/nql/export"])
	}
	// Without the diagnose scope: 403.
	reader := e.newKey("reader", "read")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/nql/%23dexbridge_discovery_users/export", strings.NewReader(`{"instance":"eu"}`))
	req.Header.Set("X-API-Key", reader)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("read-only key: got %d, want 403", resp.StatusCode)
	}
}

// TestTimesAreRFC3339UTCFromZonedTenants: fleet devices drawn at random from tenants
// in Zurich and New York have the last seen nxsim gave them, as RFC 3339 UTC, in a
// live NQL answer (computed columns too), a cached one, identification and a live
// diagnosis. nxsim's clock stands still, so that a device's last seen does too.
func TestTimesAreRFC3339UTCFromZonedTenants(t *testing.T) {
	still := time.Now().Truncate(time.Second)
	e := newEnv(t, envOptions{usTimeZone: "America/New_York", simClock: func() time.Time { return still }})
	ctx := context.Background()
	checked := 0
	for k, tenant := range []string{"eu", "us"} {
		ctl := nxsim.NewControlClient(e.sim.TenantURL(tenant), nil)
		if info, err := ctl.Info(ctx); err != nil || info.TimeZone == "UTC" {
			t.Fatalf("%s: zone %q %v, want a zone outside UTC", tenant, info.TimeZone, err)
		}
		for _, presence := range []string{"online", "offline"} {
			devs, err := ctl.SampleDevices(ctx, nxsim.Sample{N: 2, Seed: uint64(7 + k), Presence: presence})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range devs {
				checked++
				want := d.LastSeen.UTC().Truncate(time.Second).Format(time.RFC3339)
				var a nqlAnswerTrunc
				resp := e.do(http.MethodPost, "/api/v1/nql/%23get_device_basic_infos_by_device_name", e.key,
					`{"parameters":{"device_name":"`+d.Name+`"}}`, &a)
				if resp.StatusCode != 200 || a.Source != "live" || len(a.Rows) != 1 {
					t.Fatalf("%s %s: got %d %+v", tenant, d.Name, resp.StatusCode, a)
				}
				if got := a.Rows[0]["device.last_seen"]; got != want {
					t.Errorf("%s %s (%s): live device.last_seen %v, want %s", tenant, d.Name, presence, got, want)
				}
				if got, _ := a.Rows[0]["last_activity"].(string); got != "" && !isRFC3339UTC(got) {
					t.Errorf("%s %s: computed last_activity %q, want RFC 3339 UTC", tenant, d.Name, got)
				}
				resp = e.do(http.MethodPost, "/api/v1/nql/%23l1_device_checklist", e.key, `{"parameters":{"device_name":"`+d.Name+`"}}`, &a)
				if resp.StatusCode != 200 || a.Source != "cache" || len(a.Rows) != 1 || a.Rows[0]["device.last_seen"] != want {
					t.Errorf("%s %s: cached answer %d %+v, want device.last_seen %s from the cache", tenant, d.Name, resp.StatusCode, a, want)
				}
				var found struct {
					Devices []struct {
						LastSeen string `json:"last_seen"`
					} `json:"devices"`
				}
				resp = e.do(http.MethodGet, "/api/v1/devices?device_name="+d.Name, e.key, "", &found)
				if resp.StatusCode != 200 || len(found.Devices) != 1 || found.Devices[0].LastSeen != want {
					t.Errorf("%s %s: identification %d %+v, want last_seen %s", tenant, d.Name, resp.StatusCode, found, want)
				}
				code, diag, p := e.diagnose("l1_device_checklist", d.Name, true)
				if code != 200 || diag.Source != "live" || diag.Fields["device.last_seen"] != want {
					t.Errorf("%s %s: diagnosis with refresh %d %v, source %s, device.last_seen %v, want live %s", tenant, d.Name, code, p,
						diag.Source, diag.Fields["device.last_seen"], want)
				}
			}
		}
	}
	if checked < 6 {
		t.Errorf("checked %d devices, want at least 6", checked)
	}
}
