package nexthink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestGateFailsFastThenProbes: once an instance has failed three attempts in a row,
// the chatbot's calls fail at once with 503 and a Retry-After instead of each
// waiting on it and retrying, and the instance sees none of them; after the
// cool-down one call probes it, and when it answers again the gate opens for all.
func TestGateFailsFastThenProbes(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	chatbot := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.RetryFor = 10 * time.Second })
	ctx := context.Background()
	if _, err := chatbot.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err) // token cached
	}
	setFaults(t, sim, "eu", nxsim.Faults{ErrorRate: 1, ErrorStatus: 500, Groups: []string{"nql"}})
	start := time.Now()
	_, err := chatbot.Execute(ctx, "#get_device_basic_infos", jdoe)
	if p := Problem(err); p.Code != problem.UpstreamUnavailable || p.RetryAfter == 0 {
		t.Fatalf("first call: got %v, want upstream_unavailable with a Retry-After", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("first call: failed after %s, want within the first attempts and the 2 s MaxWait, not RetryFor", d)
	}
	before := counters(t, sim, "eu").Endpoints[epExecute]
	// The cool-down now runs past the chatbot's MaxWait: every call fails at once.
	fast := newClient(t, sim, "eu", "eu-client", nil)
	fast.shared = chatbot.shared // the same instance, as the services of a process share it
	fast.maxWait = 50 * time.Millisecond
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			start := time.Now()
			_, err := fast.Execute(ctx, "#get_device_basic_infos", jdoe)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeUnavailable || e.RetryAfter <= 0 || !e.NotRun() {
				t.Errorf("while the gate is closed: got %v, want %s with a Retry-After", err, CodeUnavailable)
			}
			if p := Problem(err); p.Code != problem.UpstreamUnavailable || p.RetryAfter == 0 {
				t.Errorf("while the gate is closed: problem %v, want upstream_unavailable with a Retry-After", p)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("while the gate is closed: failed after %s, want at once", d)
			}
		})
	}
	wg.Wait()
	if after := counters(t, sim, "eu").Endpoints[epExecute]; after != before {
		t.Errorf("the instance got %d calls while the gate was closed, want none", after-before)
	}

	setFaults(t, sim, "eu", nxsim.Faults{})
	testenv.Eventually(t, "the gate to open after a good probe", func() bool {
		_, err := fast.Execute(ctx, "#get_device_basic_infos", jdoe)
		return err == nil
	})
	if _, err := fast.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Errorf("after the probe: got %v, want the gate open", err)
	}
}

// TestRetryAfterHoldsEveryCall: a 429's Retry-After holds the client's other calls
// too; none is sent before it has passed.
func TestRetryAfterHoldsEveryCall(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	ctx := context.Background()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err) // token cached
	}
	resetCounters(t, sim, "eu")
	setFaults(t, sim, "eu", nxsim.Faults{FailNext: 1, FailStatus: 429, RetryAfterSeconds: 1, Groups: []string{"nql"}})
	first := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "#get_device_basic_infos", jdoe)
		first <- err
	}()
	testenv.Eventually(t, "the 429 to hold the instance", func() bool {
		c.gate.mu.Lock()
		defer c.gate.mu.Unlock()
		return time.Now().Before(c.gate.until)
	})
	start := time.Now()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("a call during another's Retry-After went after %s, want it held until the Retry-After passed", d)
	}
	if err := <-first; err != nil {
		t.Errorf("the call that met the 429: %v, want it retried after the Retry-After", err)
	}
	got := counters(t, sim, "eu")
	if answers(got, epExecute, 429) != 1 || answers(got, epExecute, 200) != 2 {
		t.Errorf("executes: got %v, want one 429 and two 200", got.Responses[epExecute])
	}
}
