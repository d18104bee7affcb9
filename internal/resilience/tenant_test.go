package resilience_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestTenantFaults runs `dexbridge run ingress devices topics` (one process, in this
// test binary) against an nxsim tenant whose cache has been discovered, then makes
// the tenant misbehave: down (503 to everything, or connections closed), failing
// (500), busy (429 with Retry-After) or slow (5 s per call).
//
// It proves, for each, that cached answers are still served, with the data_as_of
// of the discovery that read them, without asking the tenant; that live calls (a
// diagnosis that must query the tenant, identification of an unknown employee)
// from eight chatbots at once are answered 503 (429 when busy) with Retry-After
// within a few seconds, and a second wave at once without reaching the tenant at
// all (the client's gate), instead of each waiting on the tenant and retrying; that
// a slow tenant costs one call per query and its latency, never its latency times
// retries; that discovery's three failed attempts mark the instance down and drop
// its cache; and that when the tenant is back, live calls and, with the next
// discovery, the cache come back on their own.
func TestTenantFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the tenant's faults")
	}
	for _, tt := range []struct {
		name   string
		faults nxsim.Faults
		status int    // what a live call gets
		code   string // its problem code
	}{
		{"down, answering 503", nxsim.Faults{Down: "503"}, http.StatusServiceUnavailable, "upstream_unavailable"},
		{"down, closing connections", nxsim.Faults{Down: "close"}, http.StatusServiceUnavailable, "upstream_unavailable"},
		{"failing with 500", nxsim.Faults{ErrorRate: 1, ErrorStatus: 500}, http.StatusServiceUnavailable, "upstream_unavailable"},
		{"busy, 429 with Retry-After", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 5}, http.StatusTooManyRequests, "rate_limited"},
		{"slow, 5 s a call", nxsim.Faults{Latency: map[string]nxsim.Latency{"*": {FixedMS: 5000}}}, http.StatusOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := discoverytest.StartSim(t, nil)
			dbURL := testenv.PostgresURL(t)
			fillCache(t, sim, dbURL)
			key := apiKey(t, dbURL)
			cfg := testConfig(t, sim, testenv.NATSURL(t), dbURL)
			base, _ := startProcess(t, cfg, "ingress", "devices", "topics")
			c := newClient(base, key)
			slow := tt.status == http.StatusOK

			var known struct {
				Devices  []events.Device `json:"devices"`
				Source   string          `json:"source"`
				DataAsOf *time.Time      `json:"data_as_of"`
			}
			if o := c.do(http.MethodGet, "/api/v1/devices?username=jdoe", ""); o.status != http.StatusOK {
				t.Fatalf("before the fault: %s", o)
			} else {
				o.decode(t, &known)
			}
			asOf := known.DataAsOf
			// A diagnosis from the cache is dated by the device's last_seen as discovery
			// read it, no later than the discovery.
			var checklist struct {
				DataAsOf *time.Time `json:"data_as_of"`
			}
			if o := c.do(http.MethodPost, "/api/v1/topics/l1_device_checklist/diagnosis", `{"device":"PC-HEALTHY"}`); o.status != http.StatusOK {
				t.Fatalf("cached diagnosis before the fault: %s", o)
			} else {
				o.decode(t, &checklist)
			}
			if checklist.DataAsOf == nil || asOf == nil || checklist.DataAsOf.After(*asOf) {
				t.Fatalf("cached diagnosis before the fault: as of %v, want the cached last_seen, no later than the discovery %v", checklist.DataAsOf, asOf)
			}
			// One live diagnosis before the fault: how many calls it costs the tenant.
			reset(t, sim)
			if o := live(c)[0](); o.status != http.StatusOK {
				t.Fatalf("live diagnosis before the fault: %s %s", o, o.body)
			}
			perDiagnosis := nqlCalls(t, sim)

			discoverytest.SetFaults(t, sim, "eu", tt.faults)
			reset(t, sim)

			// Cached answers are still served, as of the discovery (the identification) or
			// of the device's cached last_seen (the diagnosis), untouched.
			for _, cached := range []struct {
				o    outcome
				asOf *time.Time
			}{
				{c.do(http.MethodGet, "/api/v1/devices?username=jdoe", ""), asOf},
				{c.do(http.MethodPost, "/api/v1/topics/l1_device_checklist/diagnosis", `{"device":"PC-HEALTHY"}`), checklist.DataAsOf},
			} {
				o, asOf := cached.o, cached.asOf
				var got struct {
					Source   string     `json:"source"`
					DataAsOf *time.Time `json:"data_as_of"`
				}
				if o.status == http.StatusOK {
					o.decode(t, &got)
				}
				if o.status != http.StatusOK || got.Source != events.SourceCache || got.DataAsOf == nil || !got.DataAsOf.Equal(*asOf) || o.took > 2*time.Second {
					t.Errorf("cached answer during the fault: got %s, source %q as of %v; want 200 from the cache as of %v, at once",
						o, got.Source, got.DataAsOf, asOf)
				}
			}
			if n := nqlCalls(t, sim); n != 0 {
				t.Errorf("cached answers asked the tenant %d times, want 0", n)
			}

			// Live calls: two waves of eight chatbots.
			first := wave(c, 8)
			afterFirst := nqlCalls(t, sim)
			second := wave(c, 8)
			afterSecond := nqlCalls(t, sim)
			var firstLongest, secondLongest time.Duration
			for k, w := range [][]outcome{first, second} {
				for _, o := range w {
					if k == 0 {
						firstLongest = max(firstLongest, o.took)
					} else {
						secondLongest = max(secondLongest, o.took)
					}
					switch {
					case o.status != tt.status || o.err != nil:
						t.Errorf("live call, wave %d: got %s %s, want %d", k+1, o, o.body, tt.status)
					case !slow && (!o.problem || o.code != tt.code || o.retryAfter == ""):
						t.Errorf("live call, wave %d: got %s %s, want a %s problem with Retry-After", k+1, o, o.body, tt.code)
					case o.took > requestBound:
						t.Errorf("live call, wave %d: got %s, want an answer within %s", k+1, o, requestBound)
					}
				}
			}
			if slow {
				// One call per query, none retried: a chatbot waits the tenant's
				// latency once.
				if want := int64(8 * (perDiagnosis + 1)); afterFirst > want || afterSecond-afterFirst > want {
					t.Errorf("calls to the slow tenant: %d then %d for eight diagnoses and identifications, want at most %d each",
						afterFirst, afterSecond-afterFirst, want)
				}
			} else {
				// The first wave pays for finding the tenant down: a few attempts, not
				// each chatbot's full retry budget.
				if firstLongest > 5*time.Second {
					t.Errorf("first wave: the longest took %s, want the tenant's failure known within a few attempts", firstLongest)
				}
				if secondLongest > time.Second {
					t.Errorf("second wave: the longest took %s, want every call refused at once", secondLongest)
				}
				if n := afterSecond - afterFirst; n > 1 {
					t.Errorf("second wave: the tenant got %d calls, want at most one probe", n)
				}
			}

			if !slow {
				// Discovery fails its three attempts: the instance is marked down and its
				// cache dropped, so identification stops answering from it.
				run := discover(t, sim, dbURL)
				if run.Outcome != store.RunFailure || run.Attempts != 3 {
					t.Errorf("discovery during the fault: got %s after %d attempts, want failure after 3", run.Outcome, run.Attempts)
				}
				if st := instanceState(t, c); st != "down" {
					t.Errorf("instance after the failed discovery: got %q, want down", st)
				}
				var gone struct {
					Devices []events.Device `json:"devices"`
				}
				if o := c.do(http.MethodGet, "/api/v1/devices?username=jdoe", ""); o.status != http.StatusOK {
					t.Errorf("identification of a cached employee, instance down: got %s, want 200", o)
				} else if o.decode(t, &gone); len(gone.Devices) != 0 {
					t.Errorf("identification with the instance down: got %d devices, want none (its cache dropped)", len(gone.Devices))
				}
			}

			// The tenant comes back: live calls answer again once the client's gate
			// has let a probe through, and the next discovery brings the cache back.
			discoverytest.SetFaults(t, sim, "eu", nxsim.Faults{})
			back := time.Now()
			waitFor(t, "live calls answered again", time.Minute, func() bool {
				return c.do(http.MethodPost, "/api/v1/nql/%23get_remote_action_result", `{"parameters":{"request_id":"none"},"instance":"eu"}`).status == http.StatusOK
			})
			liveAgain := time.Since(back)
			if !slow {
				if run := discover(t, sim, dbURL); run.Outcome != store.RunSuccess {
					t.Fatalf("discovery after the fault: got %s: %v", run.Outcome, run.Error)
				}
			}
			if st := instanceState(t, c); st != "up" {
				t.Errorf("instance after the tenant came back: got %q, want up", st)
			}
			if o := c.do(http.MethodGet, "/api/v1/devices?username=jdoe", ""); o.status != http.StatusOK {
				t.Errorf("identification after the fault: got %s", o)
			} else if o.decode(t, &known); len(known.Devices) == 0 || known.Source != events.SourceCache {
				t.Errorf("identification after the fault: got %+v, want jdoe's devices from the cache", known)
			}
			t.Logf("live calls: first wave longest %s, second wave longest %s; tenant calls %d then %d (%d per diagnosis when healthy); live again %s after the tenant came back",
				firstLongest.Round(time.Millisecond), secondLongest.Round(time.Millisecond), afterFirst, afterSecond-afterFirst,
				perDiagnosis, liveAgain.Round(time.Millisecond))
		})
	}
}

// live are the requests that must ask the tenant: a diagnosis whose queries read
// remote-action outputs, and the identification of an employee the cache does not
// know.
func live(c *client) []func() outcome {
	return []func() outcome{
		func() outcome {
			return c.do(http.MethodPost, "/api/v1/topics/outlook/diagnosis", `{"device":"PC-OUTLOOK-PLUGIN"}`)
		},
		func() outcome { return c.do(http.MethodGet, "/api/v1/devices?username=nobody.known", "") },
	}
}

// wave sends n live requests at once and returns their outcomes.
func wave(c *client, n int) []outcome {
	reqs := live(c)
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = reqs[i%len(reqs)]() })
	}
	wg.Wait()
	return out
}

func reset(t *testing.T, sim *nxsim.Instance) {
	t.Helper()
	discoverytest.Control(t, sim, "eu", http.MethodPost, "/_nxsim/counters/reset", nil, nil)
}

// nqlCalls is how many NQL execute calls the tenant received since the last reset.
func nqlCalls(t *testing.T, sim *nxsim.Instance) int64 {
	t.Helper()
	return discoverytest.Counters(t, sim, "eu").Endpoints["POST /api/v2/nql/execute"]
}

// discover runs one discovery of eu with three quick attempts, as the discovery
// worker's schedule would, into the schema at dbURL.
func discover(t *testing.T, sim *nxsim.Instance, dbURL string) store.DiscoveryRun {
	t.Helper()
	pool, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := store.New(pool)
	cfg := discoverytest.Config(sim, "eu")
	d := discoverytest.Discoverer(t, cfg, db, discoverytest.Instances(t, cfg, db, nil), nil)
	run, _ := d.RunOnce(context.Background(), "eu", "schedule", true)
	return run
}

// instanceState is eu's state in GET /api/v1/status.
func instanceState(t *testing.T, c *client) string {
	t.Helper()
	o := c.do(http.MethodGet, "/api/v1/status", "")
	if o.status != http.StatusOK {
		t.Fatalf("status: %s", o)
	}
	var st struct {
		Instances []events.InstanceStatus `json:"instances"`
	}
	o.decode(t, &st)
	for _, in := range st.Instances {
		if in.Name == "eu" {
			return in.State
		}
	}
	return ""
}
