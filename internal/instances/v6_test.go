package instances_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/upstream"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestMixedInfinityAndV6: one set holds an Infinity instance and a V6 one; both
// answer the same saved query, and each V6 Engine takes its budget from a shared
// limiter of its own.
func TestMixedInfinityAndV6(t *testing.T) {
	sim := discoverytest.StartSim(t, nil)
	cfg := discoverytest.Config(sim, "eu")
	srv, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: 200, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg.Instances = append(cfg.Instances, config.Instance{Name: "dc", Type: config.InstanceV6, PortalURL: srv.PortalURL(),
		Username: "nxsim", Password: config.Secret("nxsim-secret")})
	cfg.Limits.EngineRequestsPerSecond = 0.2
	forms, err := topic.FilesIn(filepath.Join("..", "..")).NXQLForms()
	if err != nil {
		t.Fatal(err)
	}
	db := store.New(testenv.Postgres(t))
	set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{Forms: forms.Forms,
		Configure: func(c *nexthink.Config) { c.MaxWait = 100 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	dc, ok := set.Get("dc")
	if !ok || dc.Type != upstream.TypeV6 {
		t.Fatalf("dc: %+v", dc)
	}
	eu, _ := set.Get("eu")
	if eu.Type != upstream.TypeInfinity {
		t.Fatalf("eu type %q", eu.Type)
	}

	drv := dc.ClientWith(instances.Patience{Wait: 100 * time.Millisecond, RetryFor: time.Second})
	res, err := drv.Execute(context.Background(), "#get_remote_action_result", map[string]string{"request_id": "00000000-0000-0000-0000-000000000000"})
	if err != nil || len(res.Rows) != 0 {
		t.Fatalf("v6 query: %v %v", res, err)
	}
	if _, err := eu.Client.Execute(context.Background(), "#get_remote_action_result", map[string]string{"request_id": "00000000-0000-0000-0000-000000000000"}); err != nil {
		t.Fatalf("infinity query: %v", err)
	}
	// Both Engines spent their one call; the next query is refused by each
	// Engine's limiter without a call.
	srv.ResetCounters()
	_, err = drv.Execute(context.Background(), "#get_device_basic_infos", map[string]string{"username": "nobody"})
	if p := nexthink.Problem(err); p.Code != problem.RateLimited {
		t.Fatalf("got %v, want rate limited", err)
	}
	for e, c := range srv.Counters() {
		if c.Calls != 0 {
			t.Errorf("engine %s called past its budget", e)
		}
	}
}
