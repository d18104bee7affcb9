package nexthink

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
)

type nxsimConfig = nxsim.Config

// startSim starts nxsim on a free port with the repository's topics and queries.
func startSim(t testing.TB, mod func(*nxsim.Config)) *nxsim.Instance {
	t.Helper()
	cfg := nxsim.Config{
		Addr: "127.0.0.1:0", FleetSize: 200, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Logger:      slog.New(slog.DiscardHandler),
		Executions:  nxsim.ExecutionTiming{Pending: 20 * time.Millisecond, Running: 40 * time.Millisecond, Tick: 5 * time.Millisecond},
		ExportDelay: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	in, err := nxsim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("nxsim start: %v", err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("nxsim close: %v", err)
		}
	})
	return in
}

// newClient returns a client of tenant with credential clientID (secret "<id>-secret").
func newClient(t testing.TB, sim *nxsim.Instance, tenant, clientID string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Instance: tenant, APIURL: sim.TenantURL(tenant), TokenURL: sim.TenantURL(tenant),
		ClientID: clientID, ClientSecret: config.Secret(clientID + "-secret"),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Before nxsim closes (cleanups run last first): a connection the transport
	// dialled but never used would hold nxsim's graceful shutdown for 5 s.
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// control calls nxsim's control API of tenant and decodes the answer into out.
func control(t testing.TB, sim *nxsim.Instance, tenant, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, sim.TenantURL(tenant)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: got status %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func counters(t testing.TB, sim *nxsim.Instance, tenant string) counts {
	t.Helper()
	var c counts
	control(t, sim, tenant, http.MethodGet, "/_nxsim/counters", nil, &c)
	return c
}

func setFaults(t testing.TB, sim *nxsim.Instance, tenant string, f nxsim.Faults) {
	t.Helper()
	control(t, sim, tenant, http.MethodPut, "/_nxsim/faults", f, nil)
}

// Endpoints as nxsim counts them.
const (
	epToken     = "POST /oauth2/default/v1/token"
	epExecute   = "POST /api/v2/nql/execute"
	epExport    = "POST /api/v1/nql/export"
	epStatus    = "GET /api/v1/nql/status/{exportId}"
	epFile      = "GET /_files/exports/{file}"
	epActList   = "GET /api/v1/act/remote-action"
	epActDetail = "GET /api/v1/act/remote-action/details"
	epActExec   = "POST /api/v1/act/execute"
)

// fakeClock is a clock shared by nxsim and the client, moved by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// answers returns how many answers with status code nxsim counted at endpoint.
func answers(c counts, endpoint string, code int) int64 {
	return c.Responses[endpoint][strconv.Itoa(code)]
}

type counts = nxsim.Counters

// newTransport returns a transport of the test's own, whose idle connections close
// before nxsim does (call it after startSim).
func newTransport(t testing.TB) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}
