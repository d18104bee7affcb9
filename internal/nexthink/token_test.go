package nexthink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
)

var jdoe = map[string]string{"username": "jdoe"}

// The token is renewed before it expires (80% of a 60 s lifetime, as 120 s early is
// more than a fifth of it), and only then: nxsim's clock and the client's are one.
func TestTokenRenewedBeforeExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	sim := startSim(t, func(c *nxsim.Config) { c.TokenTTL = 60 * time.Second; c.Clock = clock.Now })
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.Clock = clock.Now })
	steps := []struct {
		advance time.Duration
		want    int64 // token requests counted by nxsim so far
	}{
		{0, 1},                // first call fetches
		{30 * time.Second, 1}, // t=30s: cached
		{17 * time.Second, 1}, // t=47s: cached, renewal due at 48s
		{2 * time.Second, 2},  // t=49s: renewed although still valid
		{40 * time.Second, 2}, // t=89s: second token cached until 49+48=97s
		{70 * time.Second, 3}, // t=159s: second token expired at 109s: the next call fetches
	}
	for k, s := range steps {
		clock.Advance(s.advance)
		if _, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe); err != nil {
			t.Fatalf("step %d: Execute: %v", k, err)
		}
		got := counters(t, sim, "eu")
		if n := got.Endpoints[epToken]; n != s.want {
			t.Errorf("step %d: got %d token requests, want %d", k, n, s.want)
		}
		if n := answers(got, epExecute, http.StatusUnauthorized); n != 0 {
			t.Errorf("step %d: got %d executes refused with 401, want 0 (renew before expiry)", k, n)
		}
	}
}

// Fifty callers without a fresh token share one fetch, the first time and at renewal.
func TestTokenConcurrentCallersFetchOnce(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	sim := startSim(t, func(c *nxsim.Config) { c.TokenTTL = 60 * time.Second; c.Clock = clock.Now })
	// A slow token endpoint keeps the fetch in flight while the callers arrive.
	setFaults(t, sim, "eu", nxsim.Faults{Latency: map[string]nxsim.Latency{"token": {FixedMS: 200}}})
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.Clock = clock.Now })
	for round, want := range []int64{1, 2} {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: Execute: %v", round, err)
			}
		}
		got := counters(t, sim, "eu")
		if n := got.Endpoints[epToken]; n != want {
			t.Errorf("round %d: got %d token requests for 50 concurrent callers, want %d", round, n, want)
		}
		if n := got.Endpoints[epExecute]; n != int64(50*(round+1)) {
			t.Errorf("round %d: got %d executes, want %d", round, n, 50*(round+1))
		}
		clock.Advance(50 * time.Second) // past renewal (48 s)
	}
}

// A token the instance stops accepting (401) is dropped and the call retried once
// with a new one.
func TestTokenRefusedByAPIIsReplacedOnce(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	c := newClient(t, sim, "eu", "eu-client", nil)
	ctx := context.Background()
	if _, err := c.Execute(ctx, "#get_device_basic_infos", jdoe); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	expireTokens(t, sim, "eu")
	res, err := c.Execute(ctx, "#get_device_basic_infos", jdoe)
	if err != nil {
		t.Fatalf("Execute after tokens expired: %v", err)
	}
	if len(res.Rows) != 2 {
		t.Errorf("got %d rows, want 2", len(res.Rows))
	}
	got := counters(t, sim, "eu")
	if n := got.Endpoints[epToken]; n != 2 {
		t.Errorf("got %d token requests, want 2", n)
	}
	if n401, n200 := answers(got, epExecute, 401), answers(got, epExecute, 200); n401 != 1 || n200 != 2 {
		t.Errorf("executes: got %d 401 and %d 200, want 1 and 2", n401, n200)
	}
}

// A 401 that persists after one new token is not retried further.
func TestTokenRefusedTwiceIsAnError(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	base := newTransport(t)
	// Every execute finds its token expired: the round tripper expires all tokens at
	// nxsim just before the call leaves.
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/nql/execute") {
			expireTokens(t, sim, "eu")
		}
		return base.RoundTrip(r)
	})
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.HTTPClient = &http.Client{Transport: rt} })
	_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Call != callExecute {
		t.Fatalf("got %v, want a 401 of nql.execute", err)
	}
	if got := counters(t, sim, "eu").Endpoints[epExecute]; got != 2 {
		t.Errorf("got %d executes, want 2 (one retry with a fresh token)", got)
	}
	if p := e.Problem(); p.Code != problem.UpstreamUnavailable || !strings.Contains(p.Detail, "refused dexbridge's credentials") {
		t.Errorf("problem: got %s %q", p.Code, p.Detail)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Wrong credentials: a clear error, not retried, remembered for a while.
func TestTokenBadCredentials(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	const secret = "wrong-secret-7f3a9c"
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.ClientSecret = config.Secret(secret) })
	for k := range 3 {
		_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
		var e *Error
		if !errors.As(err, &e) || e.Call != callToken || e.Status != http.StatusUnauthorized || e.Instance != "eu" {
			t.Fatalf("call %d: got %v, want a 401 of oauth.token at eu", k, err)
		}
		p := Problem(err)
		if p.Code != problem.UpstreamUnavailable || p.Detail != "instance eu refused dexbridge's credentials" {
			t.Errorf("problem: got %s %q", p.Code, p.Detail)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(p.Error(), secret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	got := counters(t, sim, "eu")
	if n := got.Endpoints[epToken]; n != 1 {
		t.Errorf("got %d token requests for 3 calls, want 1 (no retry, refusal remembered)", n)
	}
	if n := got.Endpoints[epExecute]; n != 0 {
		t.Errorf("got %d executes, want 0", n)
	}
}

// A credential without the API's permission gets 403, not retried.
func TestForbiddenWithoutPermission(t *testing.T) {
	t.Parallel()
	sim := startSim(t, nil)
	tests := []struct {
		client, endpoint, api string
		call                  func(*Client) error
	}{
		{"eu-ra", epExecute, "the NQL API", func(c *Client) error {
			_, err := c.Execute(context.Background(), "#get_device_basic_infos", jdoe)
			return err
		}},
		{"eu-nql", epActList, "the Remote Actions API", func(c *Client) error {
			_, err := c.RemoteActions(context.Background())
			return err
		}},
	}
	for _, tt := range tests {
		before := counters(t, sim, "eu").Endpoints[tt.endpoint]
		err := tt.call(newClient(t, sim, "eu", tt.client, nil))
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusForbidden {
			t.Fatalf("%s: got %v, want 403", tt.client, err)
		}
		p := e.Problem()
		if want := "instance eu refused dexbridge's credentials the permission for " + tt.api; p.Code != problem.UpstreamUnavailable || p.Detail != want {
			t.Errorf("%s: got %s %q, want %s %q", tt.client, p.Code, p.Detail, problem.UpstreamUnavailable, want)
		}
		if n := counters(t, sim, "eu").Endpoints[tt.endpoint] - before; n != 1 {
			t.Errorf("%s: got %d calls, want 1 (403 is not retried)", tt.client, n)
		}
	}
}
