package nexthink

import (
	"context"
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
		// A query is slow here only when a test says so (Faults.Latency): on a loaded
		// machine under -race, nxsim's own 5 s limit could answer 500 to any query.
		QueryTimeout: time.Minute,
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

// ctl is the control client of an nxsim tenant; a call that fails fails t.
func ctl(t testing.TB, sim *nxsim.Instance, tenant string) *control {
	return &control{t: t, c: nxsim.NewControlClient(sim.TenantURL(tenant), nil)}
}

type control struct {
	t testing.TB
	c *nxsim.ControlClient
}

func (c *control) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

func counters(t testing.TB, sim *nxsim.Instance, tenant string) counts {
	t.Helper()
	c := ctl(t, sim, tenant)
	counts, err := c.c.Counters(context.Background())
	c.must(err)
	return counts
}

func setFaults(t testing.TB, sim *nxsim.Instance, tenant string, f nxsim.Faults) {
	t.Helper()
	c := ctl(t, sim, tenant)
	c.must(c.c.SetFaults(context.Background(), f))
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

func resetCounters(t testing.TB, sim *nxsim.Instance, tenant string) {
	t.Helper()
	c := ctl(t, sim, tenant)
	c.must(c.c.ResetCounters(context.Background()))
}

func expireTokens(t testing.TB, sim *nxsim.Instance, tenant string) {
	t.Helper()
	c := ctl(t, sim, tenant)
	c.must(c.c.ExpireTokens(context.Background()))
}

func setExportSettings(t testing.TB, sim *nxsim.Instance, tenant string, s nxsim.ExportSettings) {
	t.Helper()
	c := ctl(t, sim, tenant)
	c.must(c.c.SetExportSettings(context.Background(), s))
}

func simInfo(t testing.TB, sim *nxsim.Instance, tenant string) nxsim.Info {
	t.Helper()
	c := ctl(t, sim, tenant)
	info, err := c.c.Info(context.Background())
	c.must(err)
	return info
}
