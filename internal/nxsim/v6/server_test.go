package v6

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

func start(t *testing.T, engines int, opts ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{Engines: engines, FleetSize: 300, Seed: 4,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Executions: nxsim.ExecutionTiming{Pending: 20 * time.Millisecond, Running: 50 * time.Millisecond, Tick: 5 * time.Millisecond}}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type call struct {
	method, url, body string
	user, pass        string
	form              bool
}

func do(t *testing.T, c call) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, c.url, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if c.form {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func engines(t *testing.T, s *Server) []EngineInfo {
	t.Helper()
	status, _, body := do(t, call{method: "GET", url: s.PortalURL() + "/api/configuration/v1/engines", user: "nxsim", pass: "nxsim-secret"})
	if status != http.StatusOK {
		t.Fatalf("engines: %d %s", status, body)
	}
	var out []EngineInfo
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// query runs NXQL on an Engine from the Portal's list, as a driver would.
func query(t *testing.T, e EngineInfo, nxql string, platforms ...string) []map[string]any {
	t.Helper()
	status, _, body := rawQuery(t, e, nxql, "json", platforms...)
	if status != http.StatusOK {
		t.Fatalf("query %s on %s: %d %s", nxql, e.Name, status, body)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return rows
}

func engineURL(e EngineInfo) string {
	return "http://" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
}

func rawQuery(t *testing.T, e EngineInfo, nxql, format string, platforms ...string) (int, http.Header, string) {
	t.Helper()
	v := url.Values{"query": {nxql}, "format": {format}}
	if len(platforms) == 0 {
		platforms = []string{"windows", "mac_os"}
	}
	v["platform"] = platforms
	return do(t, call{method: "GET", url: engineURL(e) + "/2/query?" + v.Encode(), user: "nxsim", pass: "nxsim-secret"})
}

func TestEngineListNeedsBasicAuth(t *testing.T) {
	s := start(t, 3)
	for _, c := range []call{
		{method: "GET", url: s.PortalURL() + "/api/configuration/v1/engines"},
		{method: "GET", url: s.PortalURL() + "/api/configuration/v1/engines", user: "nxsim", pass: "wrong"},
	} {
		status, h, body := do(t, c)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "Basic") || strings.Contains(body, "nxsim-secret") {
			t.Fatalf("engines with %q/%q: %d %v %s", c.user, c.pass, status, h, body)
		}
	}
	list := engines(t, s)
	if len(list) != 3 {
		t.Fatalf("%d engines, want 3", len(list))
	}
	uids := map[string]bool{}
	for _, e := range list {
		if e.Status != "CONNECTED" || e.Address != "127.0.0.1" || e.Port == 0 || e.UID == "" || uids[e.UID] {
			t.Fatalf("engine %+v", e)
		}
		uids[e.UID] = true
		if got := query(t, e, `(select (name) (from device) (limit 1))`); len(got) != 1 {
			t.Fatalf("engine %s at its listed address answered %d rows", e.Name, len(got))
		}
	}
}

// TestEnginesPartitionTheFleet: every device is on exactly one Engine but the
// moved ones, which are on two; the Engine a moved device left reports it older.
func TestEnginesPartitionTheFleet(t *testing.T) {
	now := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC) // a still clock: device times do not move between calls
	s := start(t, 2, func(c *Config) { c.Clock = func() time.Time { return now } })
	seen := map[string][]string{}
	lastSeen := map[string]map[string]string{}
	for _, e := range engines(t, s) {
		lastSeen[e.Name] = map[string]string{}
		for _, r := range query(t, e, `(select (device_uid last_seen) (from device))`) {
			uid := r["device_uid"].(string)
			seen[uid] = append(seen[uid], e.Name)
			lastSeen[e.Name][uid] = r["last_seen"].(string)
		}
	}
	if len(seen) != s.Fleet().Size() {
		t.Fatalf("%d distinct devices across the engines, want %d", len(seen), s.Fleet().Size())
	}
	info := s.Info()
	if len(info.Moved) == 0 {
		t.Fatal("no moved device")
	}
	moved := map[string]MovedDevice{}
	for _, m := range info.Moved {
		moved[m.CollectorUID] = m
	}
	for uid, on := range seen {
		m, isMoved := moved[uid]
		if !isMoved {
			if len(on) != 1 {
				t.Fatalf("device %s on %v, want one engine", uid, on)
			}
			continue
		}
		if len(on) != 2 {
			t.Fatalf("moved device %s on %v, want two engines", uid, on)
		}
		newer, older := lastSeen[m.To][uid], lastSeen[m.From][uid]
		if !(older < newer) {
			t.Fatalf("moved device %s: last_seen %s on %s (left), %s on %s (owner): want the owner's newer", uid, older, m.From, newer, m.To)
		}
		i, _ := s.Fleet().DeviceByCollectorUID(uid)
		if want := s.Fleet().Device(i).LastSeen.UTC().Format("2006-01-02T15:04:05"); newer != want {
			t.Fatalf("owner reports last_seen %s, the fleet %s", newer, want)
		}
	}
}

func TestQueryFormsAndParameters(t *testing.T) {
	s := start(t, 2)
	list := engines(t, s)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 5 {
		i := rng.IntN(s.Fleet().Size())
		d := s.Fleet().Device(i)
		e := list[s.OwnerOf(i)]
		// POST with a form body and a p1 parameter.
		v := url.Values{"query": {`(select (name device_uid platform) (from device (where device (eq device_uid (string "%1")))))`},
			"p1": {d.CollectorUID}, "format": {"json"}, "platform": {"windows", "mac_os"}}
		status, _, body := do(t, call{method: "POST", url: engineURL(e) + "/2/query", body: v.Encode(), form: true, user: "nxsim", pass: "nxsim-secret"})
		if status != http.StatusOK {
			t.Fatalf("POST: %d %s", status, body)
		}
		want := `[{"name":"` + d.Name + `","device_uid":"` + d.CollectorUID + `","platform":"` + map[string]string{"Windows": "windows", "macOS": "mac_os"}[d.Platform] + `"}]`
		if body != want {
			t.Fatalf("got %s, want %s (keys in select order)", body, want)
		}
		// The other platform alone does not see the device.
		other := map[string]string{"Windows": "mac_os", "macOS": "windows"}[d.Platform]
		if rows := query(t, e, `(select (name) (from device (where device (eq name (string "`+d.Name+`")))))`, other); len(rows) != 0 {
			t.Fatalf("platform=%s returned the %s device %s", other, d.Platform, d.Name)
		}
	}
	status, h, body := rawQuery(t, list[0], `(select (name total_ram) (from device) (order_by name asc) (limit 3))`, "csv")
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %v", status, h)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 4 || !slices.Equal(recs[0], []string{"name", "total_ram"}) {
		t.Fatalf("csv %q: %v", body, err)
	}
}

func TestQueryErrors(t *testing.T) {
	s := start(t, 2)
	e := engines(t, s)[0]
	tests := []struct {
		name   string
		c      call
		status int
		want   []string
	}{
		{"no credentials", call{method: "GET", url: engineURL(e) + "/2/query?query=" + url.QueryEscape("(select (name) (from device))")}, 401, []string{`id="error_message"`}},
		{"wrong password", call{method: "GET", url: engineURL(e) + "/2/query?query=x", user: "nxsim", pass: "no"}, 401, nil},
		{"missing query", call{method: "GET", url: engineURL(e) + "/2/query?format=json", user: "nxsim", pass: "nxsim-secret"}, 400, []string{"Missing parameter: query"}},
		{"unknown field", call{method: "GET", url: engineURL(e) + "/2/query?format=json&query=" + url.QueryEscape("(select (nam) (from device))"), user: "nxsim", pass: "nxsim-secret"},
			400, []string{`line 1, column 10`, `unknown field &#34;nam&#34;`, `<ul id="error_options">`, "<li>name</li>"}},
		{"unknown form", call{method: "GET", url: engineURL(e) + "/2/query?query=" + url.QueryEscape("(select (name) (from device (group_by name)))"), user: "nxsim", pass: "nxsim-secret"},
			400, []string{`unknown form &#34;group_by&#34;`}},
		{"unknown platform", call{method: "GET", url: engineURL(e) + "/2/query?platform=linux&query=" + url.QueryEscape("(select (name) (from device))"), user: "nxsim", pass: "nxsim-secret"},
			400, []string{"Unknown platform: linux", "<li>mac_os</li>"}},
		{"unknown format", call{method: "GET", url: engineURL(e) + "/2/query?format=yaml&query=x", user: "nxsim", pass: "nxsim-secret"}, 400, []string{"Unknown format"}},
		{"wrong method", call{method: "DELETE", url: engineURL(e) + "/2/query", user: "nxsim", pass: "nxsim-secret"}, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := do(t, tt.c)
			if status != tt.status || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s %s, want %d text/html", status, h.Get("Content-Type"), body, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Fatalf("body %s lacks %s", body, w)
				}
			}
		})
	}
}

func setFaults(t *testing.T, s *Server, name string, f Faults) {
	t.Helper()
	b, _ := json.Marshal(f)
	status, _, body := do(t, call{method: "PUT", url: s.PortalURL() + "/_nxsim/engines/" + name + "/faults", body: string(b)})
	if status != http.StatusOK {
		t.Fatalf("faults: %d %s", status, body)
	}
}

func TestEngineFaults(t *testing.T) {
	s := start(t, 2)
	list := engines(t, s)
	e := list[1]

	setFaults(t, s, e.Name, Faults{RefuseStatus: 503, RetryAfterSeconds: 7})
	status, h, _ := rawQuery(t, e, `(select (name) (from device))`, "json")
	if status != 503 || h.Get("Retry-After") != "7" {
		t.Fatalf("refusing engine: %d Retry-After %q", status, h.Get("Retry-After"))
	}
	if rows := query(t, list[0], `(select (name) (from device) (limit 1))`); len(rows) != 1 {
		t.Fatal("the other engine stopped answering")
	}

	setFaults(t, s, e.Name, Faults{Down: true})
	req, _ := http.NewRequest("GET", engineURL(e)+"/2/query?query=x", nil)
	req.SetBasicAuth("nxsim", "nxsim-secret")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("down engine answered %d", resp.StatusCode)
	}
	if got := engines(t, s)[1].Status; got != "DISCONNECTED" {
		t.Fatalf("down engine listed as %s", got)
	}

	setFaults(t, s, e.Name, Faults{LatencyMS: 5000})
	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ = http.NewRequest("GET", engineURL(e)+"/2/query?query="+url.QueryEscape("(select (name) (from device))"), nil)
	req.SetBasicAuth("nxsim", "nxsim-secret")
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("slow engine answered within the client's timeout: %d", resp.StatusCode)
	}

	setFaults(t, s, e.Name, Faults{})
	if rows := query(t, e, `(select (name) (from device) (limit 1))`); len(rows) != 1 {
		t.Fatal("engine did not recover")
	}
	status, _, body := do(t, call{method: "PUT", url: s.PortalURL() + "/_nxsim/engines/" + e.Name + "/faults", body: `{"refuse_status": 418}`})
	if status != 400 || !strings.Contains(body, "refuse_status") {
		t.Fatalf("bad faults: %d %s", status, body)
	}
}

// runAction triggers a remote action through the Portal.
func runAction(t *testing.T, s *Server, body string) (int, RunResponse, string) {
	t.Helper()
	status, _, raw := do(t, call{method: "POST", url: s.PortalURL() + "/api/remoteaction/v2/run", body: body, user: "nxsim", pass: "nxsim-secret"})
	var resp RunResponse
	if status == http.StatusOK {
		if err := json.Unmarshal([]byte(raw), &resp); err != nil {
			t.Fatal(err)
		}
	}
	return status, resp, raw
}

// waitStatus polls the owner Engine until the request's execution reaches want.
func waitStatus(t *testing.T, e EngineInfo, reqID, want string) map[string]any {
	t.Helper()
	q := `(select ((remote_action_execution (request_uid status outputs)) (device (device_uid))) (from (remote_action_execution device) (where remote_action_execution (eq request_uid (string "` + reqID + `"))) (between now-1d now+1d)))`
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := query(t, e, q)
		if len(rows) == 1 && rows[0]["remote_action_execution.status"] == want {
			return rows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s on %s: rows %v, want status %s", reqID, e.Name, rows, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pickDevice returns a random device matching ok (seeded).
func pickDevice(t *testing.T, s *Server, rng *rand.Rand, ok func(fleet.Device) bool) fleet.Device {
	t.Helper()
	for range 10000 {
		d := s.Fleet().Device(rng.IntN(s.Fleet().Size()))
		if ok(d) {
			return d
		}
	}
	t.Fatal("no device matches")
	return fleet.Device{}
}

func TestRunOnTheOwnerEngine(t *testing.T) {
	s := start(t, 2)
	list := engines(t, s)
	rng := rand.New(rand.NewPCG(3, 9))
	onedrive, _ := s.actions.Find("#get_onedrive_status")
	d := pickDevice(t, s, rng, func(d fleet.Device) bool { return d.Platform == "Windows" && d.Online })
	owner := s.OwnerOf(d.Index)
	status, resp, raw := runAction(t, s, `{"requestUid":"11111111-2222-4333-8444-555555555555","remoteActionUid":"`+onedrive.UUID+`","deviceUids":["`+d.CollectorUID+`"],"params":{"Unknown":"ignored"}}`)
	if status != http.StatusOK || resp.RequestUID != "11111111-2222-4333-8444-555555555555" || len(resp.Engines) != 2 {
		t.Fatalf("run: %d %s", status, raw)
	}
	for k, er := range resp.Engines {
		want := []string{}
		if k == owner {
			want = []string{d.CollectorUID}
		}
		if er.Status != "OK" || !slices.Equal(er.DeviceUIDs, want) || er.UID != list[k].UID {
			t.Fatalf("engine %d answered %+v, want OK with %v", k, er, want)
		}
	}
	row := waitStatus(t, list[owner], resp.RequestUID, "success")
	if row["device.device_uid"] != d.CollectorUID || !strings.Contains(row["remote_action_execution.outputs"].(string), "OneDriveStatus") {
		t.Fatalf("execution row %v", row)
	}
	// The device's remote-action field reflects the run on the owner only.
	rows := query(t, list[owner], `(select (#"action:get_onedrive_status/status" #"action:get_onedrive_status/time") (from device (where device (eq device_uid (string "`+d.CollectorUID+`")))))`)
	if len(rows) != 1 || rows[0]["#action:get_onedrive_status/status"] != "success" {
		t.Fatalf("device fields %v", rows)
	}
	other := list[1-owner]
	if rows := query(t, other, `(select (request_uid) (from remote_action_execution (where remote_action_execution (eq request_uid (string "`+resp.RequestUID+`")))))`); len(rows) != 0 {
		t.Fatalf("the other engine sees the execution: %v", rows)
	}
}

func TestRunExpiresOnAnOfflineDevice(t *testing.T) {
	s := start(t, 2)
	list := engines(t, s)
	rng := rand.New(rand.NewPCG(5, 1))
	cleanup, _ := s.actions.Find("#disk_cleanup")
	d := pickDevice(t, s, rng, func(d fleet.Device) bool { return d.Platform == "Windows" && !d.Online })
	status, resp, raw := runAction(t, s, `{"remoteActionUid":"`+cleanup.UUID+`","deviceUids":["`+d.CollectorUID+`"],"timeoutSeconds":1}`)
	if status != http.StatusOK || resp.RequestUID == "" {
		t.Fatalf("run: %d %s", status, raw)
	}
	waitStatus(t, list[s.OwnerOf(d.Index)], resp.RequestUID, "waiting_for_device")
	waitStatus(t, list[s.OwnerOf(d.Index)], resp.RequestUID, "expired")
}

func TestRunTargetsAndEngineFaults(t *testing.T) {
	s := start(t, 2)
	list := engines(t, s)
	m := s.Info().Moved[0]
	spooler, _ := s.actions.Find("#restart_print_spooler")
	var left EngineInfo
	for _, e := range list {
		if e.Name == m.From {
			left = e
		}
	}
	// The Engine a device left does not run actions on it.
	status, resp, raw := runAction(t, s, `{"remoteActionUid":"`+spooler.UUID+`","deviceUids":["`+m.CollectorUID+`"],"engineDatabaseUids":["`+left.UID+`"]}`)
	if status != 200 || len(resp.Engines) != 1 || resp.Engines[0].Name != m.From || len(resp.Engines[0].DeviceUIDs) != 0 {
		t.Fatalf("run on the engine the device left: %d %s", status, raw)
	}
	setFaults(t, s, list[0].Name, Faults{Down: true})
	setFaults(t, s, list[1].Name, Faults{LatencyMS: 3000})
	status, resp, raw = runAction(t, s, `{"remoteActionUid":"`+spooler.UUID+`","deviceUids":["`+m.CollectorUID+`"],"timeoutSeconds":1}`)
	if status != 200 || resp.Engines[0].Status != "UNAVAILABLE" || resp.Engines[1].Status != "TIMEOUT" {
		t.Fatalf("run with engine faults: %d %s", status, raw)
	}
	setFaults(t, s, list[1].Name, Faults{RefuseStatus: 429})
	if _, resp, raw = runAction(t, s, `{"remoteActionUid":"`+spooler.UUID+`","deviceUids":["`+m.CollectorUID+`"]}`); resp.Engines[1].Status != "REFUSED" {
		t.Fatalf("run on a refusing engine: %s", raw)
	}
}

func TestRunRejects(t *testing.T) {
	s := start(t, 2)
	ok, _ := s.actions.Find("#disk_cleanup")
	restart, _ := s.actions.Find("#restart_device")
	startup, _ := s.actions.Find("#disable_application_from_startup_menu")
	d := s.Fleet().Device(20)
	tests := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"no credentials", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{}`}, 401, "UNAUTHORIZED"},
		{"GET", call{method: "GET", url: "/api/remoteaction/v2/run", user: "nxsim", pass: "nxsim-secret"}, 404, "NOT_FOUND"},
		{"not JSON", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{`, user: "nxsim", pass: "nxsim-secret"}, 400, "INVALID_REQUEST"},
		{"no action", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"deviceUids":["x"]}`, user: "nxsim", pass: "nxsim-secret"}, 400, "INVALID_REMOTE_ACTION"},
		{"unknown action", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"00000000-0000-4000-8000-000000000000","deviceUids":["x"]}`, user: "nxsim", pass: "nxsim-secret"}, 404, "REMOTE_ACTION_NOT_FOUND"},
		{"not for the API", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"` + restart.UUID + `","deviceUids":["x"]}`, user: "nxsim", pass: "nxsim-secret"}, 403, "REMOTE_ACTION_NOT_API_ENABLED"},
		{"no devices", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"` + ok.UUID + `","deviceUids":[]}`, user: "nxsim", pass: "nxsim-secret"}, 400, "INVALID_DEVICES"},
		{"bad timeout", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"` + ok.UUID + `","deviceUids":["` + d.CollectorUID + `"],"timeoutSeconds":0}`, user: "nxsim", pass: "nxsim-secret"}, 400, "INVALID_TIMEOUT"},
		{"unknown engine", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"` + ok.UUID + `","deviceUids":["` + d.CollectorUID + `"],"engineDatabaseUids":["nope"]}`, user: "nxsim", pass: "nxsim-secret"}, 400, "UNKNOWN_ENGINE"},
		{"missing input", call{method: "POST", url: "/api/remoteaction/v2/run", body: `{"remoteActionUid":"` + startup.UUID + `","deviceUids":["` + d.CollectorUID + `"]}`, user: "nxsim", pass: "nxsim-secret"}, 400, "MISSING_PARAMETER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.url = s.PortalURL() + tt.c.url
			status, _, body := do(t, tt.c)
			var e struct{ Code, Message string }
			_ = json.Unmarshal([]byte(body), &e)
			if status != tt.status || e.Code != tt.code || e.Message == "" {
				t.Fatalf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
}
