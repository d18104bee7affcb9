package resilience_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestLeaseHoldersKilled runs the ingress with the remote-action and devices workers
// as one process of the binary, and three replicas of `dexbridge run poller
// discovery`. The first discovery of the tenant (slow exports: it lasts seconds) and
// the polling of five pending remote-action executions each run on whichever replica
// holds the instance's lease, a PostgreSQL advisory lock on a connection of its own.
// The replica running the discovery is killed with SIGKILL mid-run, then the one
// polling (if another), so their PostgreSQL sessions die with them.
//
// It proves that a surviving replica takes each lease within seconds and carries
// on: the discovery runs again to success (the killed run recorded as abandoned) and
// every execution reaches its final state, without a restart or an operator.
func TestLeaseHoldersKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.ExportDelay = 1500 * time.Millisecond
		c.Executions = nxsim.ExecutionTiming{Pending: 3 * time.Second, Running: time.Second, Tick: 25 * time.Millisecond}
	})
	dbURL := testenv.PostgresURL(t)
	key := apiKey(t, dbURL)
	natsURL := testenv.NATSURL(t)
	cfgPath, env := processConfig(t, testenv.Prefix(t), sim, "executions:\n  poll_interval: 500ms\n")
	env = append(env, "DATABASE_URL="+dbURL, "NATS_URL="+natsURL)

	front := startProc(t, "ingress", bin, env, "run", "-config", cfgPath, "ingress", "remoteactions", "devices")
	base := "http://" + field(front.wait(t, "ingress listening", time.Minute, nil), "addr")
	replicas := make([]*proc, 3)
	for k := range replicas {
		replicas[k] = startProc(t, fmt.Sprintf("replica %d", k+1), bin, env, "run", "-config", cfgPath, "poller", "discovery")
	}
	eu := func(l map[string]any) bool { return l["instance"] == "eu" }
	holder := func(msg string, since time.Time, alive func(*proc) bool) *proc {
		t.Helper()
		var found *proc
		waitFor(t, msg, time.Minute, func() bool {
			for _, p := range replicas {
				if !alive(p) {
					continue
				}
				if _, ok := p.find(msg, func(l map[string]any) bool { return eu(l) && logTime(l).After(since) }); ok {
					found = p
					return true
				}
			}
			return false
		})
		return found
	}
	all := func(*proc) bool { return true }
	discovering := holder("discovery started", time.Time{}, all)
	polling := holder("polling executions", time.Time{}, all)

	c := newClient(base, key)
	var ids []string
	for _, device := range []string{"PC-HEALTHY", "PC-OUTLOOK-OFFLINE", "PC-OUTLOOK-PLUGIN", "PC-LOW-DISK", "PC-ONEDRIVE"} {
		o := c.do(http.MethodPost, "/api/v1/remote-actions/executions",
			fmt.Sprintf(`{"remote_action":"#disk_cleanup","device":%q,"reason":"resilience test"}`, device))
		if o.status != http.StatusAccepted {
			t.Fatalf("trigger on %s: %s %s", device, o, o.body)
		}
		var e events.Execution
		o.decode(t, &e)
		ids = append(ids, e.ID)
	}

	// The discovery is under way (its exports take seconds): its replica dies.
	killed := map[*proc]bool{}
	alive := func(p *proc) bool { return !killed[p] }
	discoveryKilledAt := time.Now()
	discovering.kill(t)
	killed[discovering] = true
	pollerKilledAt := discoveryKilledAt
	if !killed[polling] {
		pollerKilledAt = time.Now()
		polling.kill(t)
		killed[polling] = true
	}
	taker := holder("discovery started", discoveryKilledAt, alive)
	discoveryTakeover := logTime(taker.wait(t, "discovery started", time.Minute, func(l map[string]any) bool {
		return eu(l) && logTime(l).After(discoveryKilledAt)
	})).Sub(discoveryKilledAt)
	poller := holder("polling executions", pollerKilledAt, alive)
	pollerTakeover := logTime(poller.wait(t, "polling executions", time.Minute, func(l map[string]any) bool {
		return eu(l) && logTime(l).After(pollerKilledAt)
	})).Sub(pollerKilledAt)
	for name, d := range map[string]time.Duration{"discovery": discoveryTakeover, "poller": pollerTakeover} {
		if d > 15*time.Second {
			t.Errorf("%s lease taken over %s after its holder died, want within seconds", name, d.Round(time.Millisecond))
		}
	}

	// The discovery carries on to success; the killed run is abandoned.
	taker.wait(t, "discovery succeeded", 2*time.Minute, eu)
	pool, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	runs, err := store.New(pool).DiscoveryRuns(context.Background(), "eu", 10)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, r := range runs {
		outcomes[r.Outcome]++
	}
	if outcomes[store.RunAbandoned] != 1 || outcomes[store.RunSuccess] != 1 {
		t.Errorf("discovery runs: got %v, want the killed one abandoned and the next one a success", outcomes)
	}
	if st := instanceState(t, c); st != "up" {
		t.Errorf("instance after the takeover: got %q, want up", st)
	}

	// Every execution reaches its final state through the new poller.
	final := map[string]string{}
	waitFor(t, "every execution final", 2*time.Minute, func() bool {
		for _, id := range ids {
			if _, ok := final[id]; ok {
				continue
			}
			o := c.do(http.MethodGet, "/api/v1/remote-actions/executions/"+id, "")
			var e events.Execution
			if o.status == http.StatusOK {
				o.decode(t, &e)
			}
			if events.FinalStatus(e.Status) {
				final[id] = e.Status
			}
		}
		return len(final) == len(ids)
	})
	for id, st := range final {
		if st != "success" {
			t.Errorf("execution %s: got %s, want success", id, st)
		}
	}
	t.Logf("discovery lease taken over %s after its holder was killed, poller lease %s after (%s); runs %v; executions %v",
		discoveryTakeover.Round(time.Millisecond), pollerTakeover.Round(time.Millisecond),
		map[bool]string{true: "the same replica", false: "another replica"}[discovering == polling], outcomes, final)
}

// logTime is a log line's time.
func logTime(l map[string]any) time.Time {
	s, _ := l["time"].(string)
	at, _ := time.Parse(time.RFC3339Nano, s)
	return at
}
