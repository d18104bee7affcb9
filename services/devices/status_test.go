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

// TestStatusListsEveryV6Engine: GET /api/v1/status names every Engine of the V6
// instances configured here. Of "dc", whose Engines are configured: one no call has
// reached yet is unknown (no observation), one a process reported is up, and one
// the configuration no longer names is left out, reached or only listed. Of "us6",
// whose Engines are the Portal's, every Engine a process listed or reported shows.
// Of an instance no longer configured, none shows. Nothing here calls the
// installations (their URLs lead nowhere).
func TestStatusListsEveryV6Engine(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	nc := testenv.NATS(t)
	subjects := events.NewSubjects(testenv.Prefix(t))
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "dc", Type: config.InstanceV6, PortalURL: "https://portal.invalid",
		Username: "u", Password: config.Secret("p"), Engines: []config.V6Engine{
			{Name: "engine-2", URL: "https://engine-2.invalid:1671"}, {Name: "engine-1", URL: "https://engine-1.invalid:1671"}}},
		{Name: "us6", Type: config.InstanceV6, PortalURL: "https://portal-us.invalid", Username: "u", Password: config.Secret("p")}}
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
	save := func(e store.V6Engine) {
		t.Helper()
		if err := db.SaveV6Engine(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	list := func(instance string, engines ...string) {
		t.Helper()
		if err := db.ListV6Engines(context.Background(), instance, engines, now); err != nil {
			t.Fatal(err)
		}
	}
	save(store.V6Engine{Instance: "dc", Engine: "engine-1", LastSuccessAt: &now, ObservedAt: now})
	// A process whose configuration still named engine-3 and engine-4 (before it
	// was changed) listed one and found the other down.
	list("dc", "engine-1", "engine-3")
	save(store.V6Engine{Instance: "dc", Engine: "engine-4", Down: true, DownSince: &now, ConsecutiveFailures: 3, ObservedAt: now})
	list("us6", "engine-a", "engine-b")
	save(store.V6Engine{Instance: "us6", Engine: "engine-b", LastSuccessAt: &now, ObservedAt: now})
	save(store.V6Engine{Instance: "gone", Engine: "engine-1", LastSuccessAt: &now, ObservedAt: now})
	if err := db.MarkInstanceDown(context.Background(), "gone"); err != nil { // the status still names it
		t.Fatal(err)
	}

	var st struct {
		Instances []events.InstanceStatus `json:"instances"`
	}
	testenv.Eventually(t, "the devices worker to answer", func() bool {
		return apitest.Do(t, h, http.MethodGet, "/api/v1/status", key, "", &st).StatusCode == http.StatusOK
	})
	if len(st.Instances) != 3 || st.Instances[0].Name != "dc" || st.Instances[1].Name != "us6" || st.Instances[2].Name != "gone" ||
		st.Instances[0].Upstream != "v6" || st.Instances[1].Upstream != "v6" {
		t.Fatalf("status: got %+v, want dc, us6, then gone", st.Instances)
	}
	if got := st.Instances[2].Engines; len(got) != 0 {
		t.Errorf("engines of gone, no longer configured: got %+v, want none", got)
	}
	got := st.Instances[0].Engines
	if len(got) != 2 || got[0].Name != "engine-1" || got[1].Name != "engine-2" {
		t.Fatalf("engines of dc: got %+v, want engine-1 and engine-2", got)
	}
	if e := got[0]; e.State != "up" || e.ObservedAt == nil || !e.ObservedAt.Equal(now) || e.LastSuccessAt == nil {
		t.Errorf("engine-1, reported: got %+v, want up", e)
	}
	if e := got[1]; e.State != "unknown" || e.ObservedAt != nil || e.LastSuccessAt != nil || e.ConsecutiveFailures != 0 {
		t.Errorf("%s, never reached: got %+v, want unknown", e.Name, e)
	}
	got = st.Instances[1].Engines
	if len(got) != 2 || got[0].Name != "engine-a" || got[0].State != "unknown" || got[1].Name != "engine-b" || got[1].State != "up" {
		t.Errorf("engines of us6: got %+v, want engine-a unknown and engine-b up", got)
	}
}
