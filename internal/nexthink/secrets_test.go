package nexthink

import (
	"context"
	"errors"
	"fmt"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
)

// Errors, problems and logs (debug level included) of failing calls never hold the
// client secret, the bearer token or the signed results file URL.
func TestErrorsAndLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	const secret, wrong = "S3cr3t-a81f-4c2e", "Wr0ng-77d1-9e0b"
	sim := startSim(t, func(c *nxsim.Config) {
		c.Tenants = []nxsim.TenantConfig{{Name: "eu", Credentials: []nxsim.Credential{
			{ClientID: "dexbridge", ClientSecret: secret, Permissions: []string{nxsim.PermNQL}}}}}
		c.Queries = map[string]string{"#export_devices": exportQuery}
	})
	base := newTransport(t)
	var mu sync.Mutex
	var bearer []string
	failDownload := false
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			bearer = append(bearer, strings.TrimPrefix(a, "Bearer "))
		}
		if failDownload && strings.Contains(r.URL.Path, "/_files/") {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
		}
		return base.RoundTrip(r)
	})
	logs := &testenv.LogBuffer{}
	mk := func(mod func(*Config)) *Client {
		cfg := Config{Instance: "eu", APIURL: sim.TenantURL("eu"), TokenURL: sim.TenantURL("eu"), ClientID: "dexbridge",
			ClientSecret: config.Secret(secret), HTTPClient: &http.Client{Transport: rt}, RetryFor: 600 * time.Millisecond,
			Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if mod != nil {
			mod(&cfg)
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	c := mk(nil)
	ctx := context.Background()
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Errorf("call %d: got no error", len(errs)+1)
			return
		}
		errs = append(errs, err)
	}
	_, err := c.Execute(ctx, "#no_such_query", nil)
	collect(err)
	_, err = c.RemoteActions(ctx) // 403: no remote actions permission
	collect(err)
	setFaults(t, sim, "eu", nxsim.Faults{ErrorRate: 1, ErrorStatus: 500})
	_, err = c.Execute(ctx, "#get_device_basic_infos", jdoe)
	collect(err)
	setFaults(t, sim, "eu", nxsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 30})
	_, err = c.Execute(ctx, "#get_device_basic_infos", jdoe)
	collect(err)
	setFaults(t, sim, "eu", nxsim.Faults{})
	mu.Lock()
	failDownload = true
	mu.Unlock()
	collect(c.Export(ctx, "#export_devices", nil, func(_, _ []string) error { return nil }))
	_, err = mk(func(c *Config) { c.ClientSecret = wrong }).Execute(ctx, "#get_device_basic_infos", jdoe)
	collect(err)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	_, err = mk(func(c *Config) { c.APIURL = closed }).Execute(ctx, "#get_device_basic_infos", jdoe)
	collect(err)

	mu.Lock()
	tokens := bearer
	mu.Unlock()
	if len(tokens) == 0 {
		t.Fatal("saw no bearer token")
	}
	forbidden := append([]string{secret, wrong, "signature=", "_files/exports", "Bearer "}, tokens...)
	for k, err := range errs {
		p := Problem(err)
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), p.Error(), p.Detail} {
			for _, f := range forbidden {
				if strings.Contains(text, f) {
					t.Errorf("error %d holds %q: %s", k+1, f, text)
				}
			}
		}
		if !strings.Contains(err.Error(), "nexthink instance eu: ") {
			t.Errorf("error %d does not name the instance: %s", k+1, err)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"instance":"eu"`) || !strings.Contains(out, `"call":"nql.execute"`) {
		t.Errorf("logs lack instance and call keys:\n%s", out)
	}
	for _, f := range forbidden {
		if strings.Contains(out, f) {
			t.Errorf("logs hold %q", f)
		}
	}
}
