package devices_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apitest"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/devices"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// TestStatusListsEveryV6Engine: GET /api/v1/status names every Engine of a V6
// instance: a configured one no call has reached yet and one another process
// recorded from the Portal's list are unknown (no observation), one a process
// reported is up. Nothing here calls the installation (its URLs lead nowhere).
func TestStatusListsEveryV6Engine(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	nc := testenv.NATS(t)
	subjects := events.NewSubjects(testenv.Prefix(t))
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: "https://portal.invalid",
		Username: "u", Password: config.Secret("p"), Engines: []config.V6Engine{
			{Name: "engine-2", URL: "https://engine-2.invalid:1671"}, {Name: "engine-1", URL: "https://engine-1.invalid:1671"}}}}
	limiters := ratelimit.NewShared(db)
	set, err := instances.New(cfg, limiters, instances.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	dev, err := devices.New(devices.Options{Conn: nc, Subjects: subjects, Cache: db, Instances: set,
		CacheLimiter: limiters.Limiter(ratelimit.CacheKey+":"+testenv.Prefix(t), ratelimit.Rate{PerSecond: 1000, Burst: 1000}),
		Log:          logging.Discard(), Version: "0.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := apitest.New(t).Handler(t, ingress.NewHandler(ingress.Options{
		RPC: natsrpc.NewClient(nc, 10*time.Second), Keys: auth.NewKeys(db), Credentials: auth.NewCredentials(nil),
		Limiters: limiters, Subjects: subjects, Log: logging.Discard(),
	}))
	key := apitest.Key(t, db, "reader", "read")

	now := time.Now().UTC().Truncate(time.Second)
	if err := db.SaveV6Engine(context.Background(), store.V6Engine{Instance: "dc", Engine: "engine-1", LastSuccessAt: &now, ObservedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.ListV6Engines(context.Background(), "dc", []string{"engine-1", "engine-3"}, now); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Instances []events.InstanceStatus `json:"instances"`
	}
	testenv.Eventually(t, "the devices worker to answer", func() bool {
		return apitest.Do(t, h, http.MethodGet, "/api/v1/status", key, "", &st).StatusCode == http.StatusOK
	})
	if len(st.Instances) != 1 || st.Instances[0].Upstream != "v6" {
		t.Fatalf("status: got %+v, want dc alone", st.Instances)
	}
	got := st.Instances[0].Engines
	if len(got) != 3 || got[0].Name != "engine-1" || got[1].Name != "engine-2" || got[2].Name != "engine-3" {
		t.Fatalf("engines: got %+v, want engine-1, engine-2 and engine-3", got)
	}
	if e := got[0]; e.State != "up" || e.ObservedAt == nil || !e.ObservedAt.Equal(now) || e.LastSuccessAt == nil {
		t.Errorf("engine-1, reported: got %+v, want up", e)
	}
	for _, e := range got[1:] {
		if e.State != "unknown" || e.ObservedAt != nil || e.LastSuccessAt != nil || e.ConsecutiveFailures != 0 {
			t.Errorf("%s, never reached: got %+v, want unknown", e.Name, e)
		}
	}
}
