package nexthink

import (
	"github.com/dexbridge/dexbridge/internal/ratelimit"

	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// Execute v2 of the saved queries of config/ and topics/ against nxsim's scenario
// devices: strings, int64, float64, null and UTC date-times.
func TestExecuteDecodesRows(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	const (
		boot     = "device.boot.days_since_last_full_boot"
		gpo      = "remote_action.get_gpo_startup_impact_windows.execution.outputs.UserGpoAppliedTimeInSeconds"
		highImp  = "remote_action.get_startup_impact_windows.execution.outputs.HighImpactCount"
		oneDrive = "remote_action.get_onedrive_status.execution.outputs.OneDriveStatus"
	)
	tests := []struct {
		query  string
		params map[string]string
		rows   int
		want   map[string]any // field -> value in the first row
	}{
		{"#get_device_basic_infos", jdoe, 2, map[string]any{
			"device.name": "PC-OUTLOOK-OFFLINE", "device.operating_system.platform": "Windows", "device.hardware.type": "laptop"}},
		{"#diagnose_slow_pc_issues", map[string]string{"device_name": "PC-GPO"}, 1, map[string]any{
			"device.name": "PC-GPO", boot: int64(2), highImp: int64(0), gpo: 8.5}},
		{"#diagnose_onedrive_issues", map[string]string{"device_name": "MAC-HEALTHY"}, 1, map[string]any{
			"device.name": "MAC-HEALTHY", oneDrive: nil}},
		{"#get_device_basic_infos", map[string]string{"username": "nobody"}, 0, nil},
	}
	for _, tt := range tests {
		before := time.Now().UTC().Truncate(time.Second)
		res, err := c.Execute(context.Background(), tt.query, tt.params)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if res.QueryID != tt.query || res.ExecutedQuery == "" || len(res.Rows) != tt.rows {
			t.Fatalf("%s: got id %q, %d rows, executed %q; want %d rows", tt.query, res.QueryID, len(res.Rows), res.ExecutedQuery, tt.rows)
		}
		if res.Executed.Before(before) || res.Executed.After(time.Now().Add(time.Second)) || res.Executed.Location() != time.UTC {
			t.Errorf("%s: got executed %v, want now in UTC", tt.query, res.Executed)
		}
		for field, want := range tt.want {
			got, ok := res.Rows[0][field]
			if !ok || got != want {
				t.Errorf("%s: %s: got %#v (present %v), want %#v", tt.query, field, got, ok, want)
			}
		}
	}
}

// Date-times in rows are UTC (x-utc-times: true) and ParseTime reads them.
func TestExecuteTimesAreUTC(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	res, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
	if err != nil {
		t.Fatal(err)
	}
	// nxsim: PC-OUTLOOK-OFFLINE was seen 5 minutes ago, MAC-HEALTHY 20 minutes ago.
	for k, ago := range []time.Duration{5 * time.Minute, 20 * time.Minute} {
		seen, ok := ParseTime(res.Rows[k]["device.last_seen"])
		if !ok {
			t.Fatalf("row %d: last_seen %#v is not a time", k, res.Rows[k]["device.last_seen"])
		}
		if d := res.Executed.Sub(seen) - ago; d < -2*time.Second || d > 2*time.Second {
			t.Errorf("row %d: last_seen %v is %v before execution, want %v (a zone shift would be hours)", k, seen, res.Executed.Sub(seen), ago)
		}
	}
}

func TestExecuteUnknownQueryIsNotFound(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	_, err := c.Execute(context.Background(), "#no_such_query", nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Call != callExecute || e.Target != "#no_such_query" {
		t.Fatalf("got %v, want a 404 of nql.execute #no_such_query", err)
	}
	p := Problem(err)
	if p.Code != problem.NotFound || p.Detail != "instance eu has no saved query #no_such_query" {
		t.Errorf("problem: got %s %q", p.Code, p.Detail)
	}
	if got := counters(t, sim, "eu").Endpoints[epExecute]; got != 1 {
		t.Errorf("got %d executes, want 1 (404 is not retried)", got)
	}
}

// A query id the API would refuse is refused before any call.
func TestExecuteBadQueryIDMakesNoCall(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	for _, id := range []string{"", "get_device_basic_infos", "#A", "#x", "#with space"} {
		_, err := c.Execute(context.Background(), id, nil)
		if p := Problem(err); p.Code != problem.Invalid {
			t.Errorf("%q: got %v, want invalid", id, err)
		}
	}
	if got := counters(t, sim, "eu").Total; got != 0 {
		t.Errorf("got %d calls at nxsim, want 0", got)
	}
}

// WithPolicy shares the token cache and limiters but not the patience.
func TestWithPolicySharesTokenAndLimiter(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	chat := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.NQL = ratelimit.NewLocal("nql:eu", ratelimit.Rate{PerSecond: 2, Burst: 1})
		c.MaxWait = 50 * time.Millisecond
	})
	disc := chat.WithPolicy(5*time.Second, time.Minute)
	ctx := context.Background()
	if _, err := chat.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Execute(ctx, "#get_device_basic_infos", jdoe); Problem(err).Code != problem.RateLimited {
		t.Errorf("chatbot client, second call at once: got %v, want rate limited", err)
	}
	if _, err := disc.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Errorf("discovery client waits for the shared limiter: got %v", err)
	}
	got := counters(t, sim, "eu")
	if got.Endpoints[epToken] != 1 || got.Endpoints[epExecute] != 2 {
		t.Errorf("got %d token requests and %d executes, want 1 and 2", got.Endpoints[epToken], got.Endpoints[epExecute])
	}
}
