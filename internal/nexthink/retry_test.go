package nexthink

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// A 429 with Retry-After is waited out and retried; nxsim counts one 429 and one 200.
func TestRetryAfter429(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	if _, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err) // token cached, so the count below is of executes only
	}
	resetCounters(t, sim, "eu")
	setFaults(t, sim, "eu", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 1, Groups: []string{"nql"}})

	type result struct {
		res *Result
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		res, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
		done <- result{res, err, time.Since(start)}
	}()
	testenv.Eventually(t, "a 429 at nxsim", func() bool { return answers(counters(t, sim, "eu"), epExecute, 429) > 0 })
	setFaults(t, sim, "eu", nxsim.Faults{}) // the retry, a second later, succeeds
	r := <-done
	if r.err != nil || len(r.res.Rows) != 2 {
		t.Fatalf("got %v, want the 2 rows after one retry", r.err)
	}
	if r.d < time.Second {
		t.Errorf("succeeded after %v, want at least the Retry-After of 1s", r.d)
	}
	got := counters(t, sim, "eu")
	if got.Endpoints[epExecute] != 2 || answers(got, epExecute, 429) != 1 || answers(got, epExecute, 200) != 1 {
		t.Errorf("executes: got %d (%v), want 2: one 429, one 200", got.Endpoints[epExecute], got.Responses[epExecute])
	}
	if got.Endpoints[epToken] != 0 {
		t.Errorf("got %d token requests, want 0 (cached)", got.Endpoints[epToken])
	}
}

// A persistent failure ends within RetryFor as upstream unavailable, after several
// attempts; a persistent 429 ends as rate limited with the instance's Retry-After.
func TestPersistentFailureEndsWithinRetryFor(t *testing.T) {
	t.Parallel()
	const retryFor = 2 * time.Second
	tests := []struct {
		name       string
		faults     nxsim.Faults
		status     int
		code       problem.Code
		retryAfter time.Duration
		attempts   int64 // at least
	}{
		{"500", nxsim.Faults{ErrorRate: 1, ErrorStatus: 500}, 500, problem.UpstreamUnavailable, unavailableRetry, 3},
		{"503", nxsim.Faults{ErrorRate: 1, ErrorStatus: 503}, 503, problem.UpstreamUnavailable, time.Second, 2},
		{"429", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 1}, 429, problem.RateLimited, time.Second, 2},
		{"429 beyond RetryFor", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 30}, 429, problem.RateLimited, 30 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, nil)
			var observed atomic.Int64
			c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
				c.RetryFor = retryFor
				c.Observe = func(call Call) {
					if call.Name == callExecute {
						observed.Add(1)
					}
				}
			})
			tt.faults.Groups = []string{"nql"}
			setFaults(t, sim, "eu", tt.faults)
			start := time.Now()
			_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
			d := time.Since(start)
			var e *Error
			if !errors.As(err, &e) || e.Status != tt.status {
				t.Fatalf("got %v, want status %d", err, tt.status)
			}
			if d > retryFor+time.Second {
				t.Errorf("failed after %v, want within RetryFor %v", d, retryFor)
			}
			p := Problem(err)
			if p.Code != tt.code || p.RetryAfter != tt.retryAfter {
				t.Errorf("problem: got %s retry after %v, want %s retry after %v", p.Code, p.RetryAfter, tt.code, tt.retryAfter)
			}
			n := counters(t, sim, "eu").Endpoints[epExecute]
			if n < tt.attempts || n != observed.Load() {
				t.Errorf("got %d executes at nxsim, %d observed; want at least %d, the same", n, observed.Load(), tt.attempts)
			}
			if tt.attempts == 1 && n != 1 {
				t.Errorf("got %d executes, want 1: a Retry-After beyond RetryFor is not waited for", n)
			}
		})
	}
}

// An attempt that times out is retried.
func TestTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.CallTimeout = 300 * time.Millisecond })
	if _, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err)
	}
	resetCounters(t, sim, "eu")
	setFaults(t, sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{"nql": {FixedMS: 1500}}})
	done := make(chan error, 1)
	go func() {
		_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
		done <- err
	}()
	testenv.Eventually(t, "the first execute at nxsim", func() bool { return counters(t, sim, "eu").Endpoints[epExecute] > 0 })
	setFaults(t, sim, "eu", nxsim.Faults{})
	if err := <-done; err != nil {
		t.Fatalf("got %v, want success after the timed-out attempt", err)
	}
	got := counters(t, sim, "eu")
	if got.Endpoints[epExecute] != 2 || answers(got, epExecute, 200) != 1 {
		t.Errorf("executes: got %d (%v), want 2, one answered 200", got.Endpoints[epExecute], got.Responses[epExecute])
	}
}

// Persistent timeouts end as upstream unavailable, after more than one attempt.
// The token is fetched first (until a call succeeds: on a loaded machine a call may
// take longer than the short CallTimeout), so every attempt below is an execute that
// times out; RetryFor leaves room for a second attempt however slow the first one was.
func TestPersistentTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.CallTimeout = 500 * time.Millisecond
		c.RetryFor = 5 * time.Second
	})
	testenv.Eventually(t, "a first call, which fetches the token", func() bool {
		_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
		return err == nil
	})
	resetCounters(t, sim, "eu")
	setFaults(t, sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{"nql": {FixedMS: 60_000}}})
	_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	if p := Problem(err); p.Code != problem.UpstreamUnavailable || p.RetryAfter <= 0 {
		t.Errorf("problem: got %s retry after %v", p.Code, p.RetryAfter)
	}
	if n := counters(t, sim, "eu").Endpoints[epExecute]; n < 2 {
		t.Errorf("got %d executes, want at least 2", n)
	}
}

// The caller's deadline bounds the retries: no attempt is started that could not end.
// The instance asks to come back in 30 s, within MaxWait and RetryFor but past the
// caller's deadline 10 s away: the 429 is the answer, before the deadline, after one
// attempt (a client that waited would end with the deadline, not the 429).
func TestContextDeadlineBoundsRetries(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.MaxWait, c.RetryFor = time.Minute, time.Minute
	})
	collectorUID(t, c, "bwayne") // the token, fetched without the faults
	resetCounters(t, sim, "eu")
	setFaults(t, sim, "eu", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 30, Groups: []string{"nql"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Execute(ctx, "#get_device_basic_infos", jdoe)
	if ctx.Err() != nil {
		t.Errorf("returned after the deadline, want at once (the Retry-After passes the deadline)")
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.RetryAfter != 30*time.Second {
		t.Errorf("got %v, want the 429 with its Retry-After", err)
	}
	if n := counters(t, sim, "eu").Endpoints[epExecute]; n != 1 {
		t.Errorf("got %d executes, want 1", n)
	}
}

// Trigger is retried only when the request certainly did not run.
func TestTriggerRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults nxsim.Faults
		calls  int64 // act executes at nxsim
		exact  bool
	}{
		{"500 may have run", nxsim.Faults{ErrorRate: 1, ErrorStatus: 500}, 1, true},
		{"503 did not run", nxsim.Faults{ErrorRate: 1, ErrorStatus: 503}, 2, false},
		{"429 did not run", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 1}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, nil)
			c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.RetryFor = 1500 * time.Millisecond })
			uid := collectorUID(t, c, "bwayne")
			tt.faults.Groups = []string{"act"}
			setFaults(t, sim, "eu", tt.faults)
			_, err := c.Trigger(context.Background(), TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{uid}})
			if err == nil {
				t.Fatal("got no error")
			}
			n := counters(t, sim, "eu").Endpoints[epActExec]
			if (tt.exact && n != tt.calls) || n < tt.calls {
				t.Errorf("got %d triggers at nxsim, want %d (exactly: %v)", n, tt.calls, tt.exact)
			}
		})
	}
}

// No connection: reads and triggers are retried, since nothing reached the instance.
func TestConnectionRefusedIsRetried(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	var attempts atomic.Int64
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.APIURL = closed // the token comes from nxsim, the call finds no one
		c.RetryFor = 800 * time.Millisecond
		c.Observe = func(call Call) {
			if call.Name == callActExecute {
				attempts.Add(1)
			}
		}
	})
	_, err = c.Trigger(context.Background(), TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{"x"}})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTransport || e.Call != callActExecute {
		t.Fatalf("got %v, want a transport error of act.execute", err)
	}
	if n := attempts.Load(); n < 2 {
		t.Errorf("got %d attempts, want at least 2", n)
	}
	if p := Problem(err); p.Code != problem.UpstreamUnavailable {
		t.Errorf("problem: got %s", p.Code)
	}
}

// collectorUID returns the collector UID of a user's first device.
func collectorUID(t testing.TB, c *Client, user string) string {
	t.Helper()
	res, err := c.Execute(context.Background(), "#get_device_basic_infos", map[string]string{"username": user})
	if err != nil || len(res.Rows) == 0 {
		t.Fatalf("devices of %s: %v", user, err)
	}
	uid, _ := res.Rows[0]["device.collector.uid"].(string)
	return uid
}
