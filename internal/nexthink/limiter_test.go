package nexthink

import (
	"github.com/dexbridge/dexbridge/internal/ratelimit"

	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/problem"
)

// A call the limiter would make wait longer than MaxWait fails at once, rate limited,
// without reaching nxsim; its Retry-After is the limiter's wait. (One call every 10 s
// and a MaxWait of 1 s: however slow the first call, the second one is refused.)
func TestLimiterRefusalMakesNoCall(t *testing.T) {
	t.Parallel()
	const period = 10 * time.Second
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.NQL = ratelimit.NewLocal("nql:eu", ratelimit.Rate{PerSecond: 1 / period.Seconds(), Burst: 1})
		c.MaxWait = time.Second
	})
	ctx := context.Background()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err)
	}
	_, err := c.Execute(ctx, "#get_device_basic_infos", jdoe)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeRateLimited || e.Call != callExecute || e.Instance != "eu" {
		t.Fatalf("got %v, want rate limited by dexbridge", err)
	}
	if e.RetryAfter <= time.Second || e.RetryAfter > period {
		t.Errorf("retry after: got %v, want the limiter's wait, beyond MaxWait and within %v", e.RetryAfter, period)
	}
	if p := e.Problem(); p.Code != problem.RateLimited || p.RetryAfter != e.RetryAfter {
		t.Errorf("problem: got %s retry after %v", p.Code, p.RetryAfter)
	}
	if n := counters(t, sim, "eu").Endpoints[epExecute]; n != 1 {
		t.Errorf("got %d executes at nxsim, want 1 (the refused call made none)", n)
	}
}

// The caller's deadline is a limit too; a refused reservation is given back. The
// limiter grants one call every 10 s, so the refused callers, whose deadline is 1 s
// away, would each wait about 10 s; had they kept their reservations, the next
// caller would wait about 60 s. What is measured is the limiter's own answer, not
// the wall clock, so a slow machine cannot change it.
func TestLimiterHonoursDeadlineAndGivesBack(t *testing.T) {
	t.Parallel()
	const period = 10 * time.Second
	lim := ratelimit.NewLocal("nql:eu", ratelimit.Rate{PerSecond: 1 / period.Seconds(), Burst: 1})
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.NQL = lim
		c.MaxWait = time.Minute
	})
	ctx := context.Background()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Execute(dctx, "#get_device_basic_infos", jdoe)
		cancel()
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeRateLimited || e.RetryAfter <= 0 || e.RetryAfter > period {
			t.Fatalf("got %v, want rate limited, retry within %v", err, period)
		}
	}
	_, err := lim.Take(ctx, 0)
	var limited *ratelimit.Limited
	if !errors.As(err, &limited) || limited.RetryAfter > period {
		t.Errorf("after 5 refusals: got %v, want the next call due within %v (the refusals gave their turns back)", err, period)
	}
	if n := counters(t, sim, "eu").Endpoints[epExecute]; n != 1 {
		t.Errorf("got %d executes, want 1 (the refused calls made none)", n)
	}
}

// countingLimiter counts the calls it grants.
type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Take(context.Context, time.Duration) (time.Duration, error) {
	l.n.Add(1)
	return 0, nil
}

// NQL calls (export submit and status included) take the NQL limiter, Remote Actions
// calls the Actions limiter, the results file download neither.
func TestEachCallTakesItsLimiter(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	nql, act := &countingLimiter{}, &countingLimiter{}
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.NQL, c.Actions = nql, act })
	ctx := context.Background()
	uid := collectorUID(t, c, "bwayne")
	if err := c.Export(ctx, "#get_device_basic_infos", jdoe, func(_, _ []string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoteActions(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoteAction(ctx, "#disk_cleanup"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Trigger(ctx, TriggerRequest{RemoteActionID: "#disk_cleanup", Devices: []string{uid}}); err != nil {
		t.Fatal(err)
	}
	got := counters(t, sim, "eu")
	wantNQL := got.Endpoints[epExecute] + got.Endpoints[epExport] + got.Endpoints[epStatus]
	wantAct := got.Endpoints[epActList] + got.Endpoints[epActDetail] + got.Endpoints[epActExec]
	if nql.n.Load() != wantNQL || act.n.Load() != wantAct || wantAct != 3 || got.Endpoints[epFile] != 1 {
		t.Errorf("limiters: got nql %d, actions %d; want %d and %d (nxsim: %v)", nql.n.Load(), act.n.Load(), wantNQL, wantAct, got.Endpoints)
	}
}

// Within MaxWait, calls wait their turn: 10 per second means 5 calls take 400 ms.
func TestLimiterPacesCalls(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) {
		c.NQL = ratelimit.NewLocal("nql:eu", ratelimit.Rate{PerSecond: 10, Burst: 1})
		c.MaxWait = 2 * time.Second
	})
	start := time.Now()
	for range 5 {
		if _, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Errorf("5 calls at 10/s took %v, want at least 400 ms", d)
	}
	if n := counters(t, sim, "eu").Endpoints[epExecute]; n != 5 {
		t.Errorf("got %d executes, want 5", n)
	}
}

type brokenLimiter struct{}

func (brokenLimiter) Take(context.Context, time.Duration) (time.Duration, error) {
	return 0, errors.New("kv store unreachable")
}

// A limiter that fails refuses the call: the instance is not called unlimited.
func TestBrokenLimiterRefuses(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.Actions = brokenLimiter{} })
	_, err := c.RemoteActions(context.Background())
	if p := Problem(err); p.Code != problem.ServiceUnavailable {
		t.Errorf("got %v (%s), want service unavailable", err, p.Code)
	}
	if n := counters(t, sim, "eu").Total; n != 0 {
		t.Errorf("got %d calls at nxsim, want 0", n)
	}
}
