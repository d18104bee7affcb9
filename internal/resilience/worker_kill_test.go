package resilience_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestWorkerKilledUnderLoad runs the ingress (with the devices worker) and two
// processes of the topics worker, `dexbridge run topics`, as separate processes of
// the binary, and sixteen chatbots asking for live and cached diagnoses, the topic
// catalogue and identification. One topics process is killed with SIGKILL while it
// holds requests (its live diagnoses wait 300 ms on the tenant).
//
// It proves that the queue-group peer takes over and that the requests in flight on
// the killed worker are not lost: each is sent once more (they are idempotent reads)
// as soon as the worker's progress messages stop, so every request gets 200, or a
// clean 503/504 problem, within requestBound, never the 30 s request timeout.
func TestWorkerKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	sim := discoverytest.StartSim(t, nil)
	dbURL := testenv.PostgresURL(t)
	fillCache(t, sim, dbURL)
	key := apiKey(t, dbURL)
	natsURL := testenv.NATSURL(t)
	prefix := testenv.Prefix(t)
	cfgPath, env := processConfig(t, prefix, sim, "")
	env = append(env, "DATABASE_URL="+dbURL, "NATS_URL="+natsURL)

	front := startProc(t, "ingress", bin, env, "run", "-config", cfgPath, "ingress", "devices")
	base := "http://" + field(front.wait(t, "ingress listening", time.Minute, nil), "addr")
	w1 := startProc(t, "topics 1", bin, env, "run", "-config", cfgPath, "topics")
	w2 := startProc(t, "topics 2", bin, env, "run", "-config", cfgPath, "topics")
	for _, w := range []*proc{w1, w2} {
		w.wait(t, "dexbridge starting", time.Minute, nil)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitFor(t, "two topics workers", time.Minute, func() bool { return len(topicsStats(t, nc, prefix)) == 2 })

	// The live topic waits 300 ms per query on the tenant: each worker always holds
	// some requests.
	discoverytest.SetFaults(t, sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{"nql": {FixedMS: 300}}})
	c := newClient(base, key)
	requests := []func() outcome{
		func() outcome {
			return c.do(http.MethodPost, "/api/v1/topics/outlook/diagnosis", `{"device":"PC-OUTLOOK-PLUGIN"}`)
		},
		func() outcome { return c.do(http.MethodGet, "/api/v1/topics", "") },
		func() outcome {
			return c.do(http.MethodPost, "/api/v1/topics/l1_device_checklist/diagnosis", `{"device":"PC-HEALTHY"}`)
		},
		func() outcome { return c.do(http.MethodGet, "/api/v1/devices?username=jdoe", "") },
	}
	// Twelve chatbots on the live topic keep about six requests in flight on each
	// worker (the chance that the killed one holds none is 2^-12); four more ask for
	// the rest.
	l := startLoad(t, 16, func(i, k int) outcome {
		if i < 12 {
			return requests[0]()
		}
		return requests[1+(i+k)%(len(requests)-1)]()
	})
	ok := func(o outcome) bool { return o.status == http.StatusOK }
	waitFor(t, "both workers busy", time.Minute, func() bool {
		s := topicsStats(t, nc, prefix)
		busy := 0
		for _, n := range s {
			if n >= 20 {
				busy++
			}
		}
		return busy == 2
	})

	killedAt := time.Now()
	w1.kill(t)
	before := l.count(ok)
	waitFor(t, "the peer taking over", time.Minute, func() bool { return l.count(ok) >= before+200 })
	all := l.finish()

	checkClean(t, all)
	var spanning []outcome
	var longest time.Duration
	for _, o := range all {
		if o.spans(killedAt) {
			spanning = append(spanning, o)
			longest = max(longest, o.took)
		}
	}
	// A request lost with the worker is answered by the peer once progress stops.
	retried := 0
	for _, o := range spanning {
		if o.status == http.StatusOK && o.took >= natsrpc.LostAfter {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no request in flight at the kill was answered after the lost-after bound (%s): the kill caught none, or none was retried; in flight: %v",
			natsrpc.LostAfter, spanning)
	}
	if s := topicsStats(t, nc, prefix); len(s) != 1 {
		t.Errorf("topics workers after the kill: got %d, want 1", len(s))
	}
	counts, worst := summary(all)
	t.Logf("%d requests: %v; longest %s; %d in flight at the kill (longest %s), %d of them answered by the peer after the lost-after bound",
		len(all), counts, worst.Round(time.Millisecond), len(spanning), longest.Round(time.Millisecond), retried)
}

// topicsStats asks every topics worker of the deployment for its micro stats: the
// requests each has answered, by instance id.
func topicsStats(t *testing.T, nc *nats.Conn, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range testenv.MicroStats(t, nc, "topics") {
		n, ours := 0, false
		for _, e := range s.Endpoints {
			n += e.NumRequests
			ours = ours || strings.HasPrefix(e.Subject, prefix+".")
		}
		if ours {
			out[s.ID] = n
		}
	}
	return out
}
