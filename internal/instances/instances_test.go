package instances_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/instances"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestReplicasShareAnInstanceBudget: two sets built as two replicas would build them
// take their NQL calls from one budget per instance, and each instance has its own.
func TestReplicasShareAnInstanceBudget(t *testing.T) {
	sim := discoverytest.StartSim(t, nil)
	cfg := discoverytest.Config(sim, "eu", "us")
	cfg.Limits.EngineRequestsPerSecond = 0.2 // one call, then five seconds' wait
	db := store.New(testenv.Postgres(t))
	var replicas []*instances.Set
	for range 2 {
		set, err := instances.New(cfg, ratelimit.NewShared(db), instances.Options{
			Configure: func(c *nexthink.Config) { c.MaxWait = 100 * time.Millisecond },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(set.Close)
		replicas = append(replicas, set)
	}
	if got := replicas[0].Names(); len(got) != 2 || got[0] != "eu" || got[1] != "us" {
		t.Fatalf("names: got %v, want [eu us] in configuration order", got)
	}
	call := func(set *instances.Set, name string) error {
		in, ok := set.Get(name)
		if !ok {
			t.Fatalf("no instance %s", name)
		}
		_, err := in.Client.Execute(context.Background(), "#get_device_basic_infos", map[string]string{"username": "jdoe"})
		return err
	}
	limited := func(err error) bool {
		var e *nexthink.Error
		return errors.As(err, &e) && e.Code == nexthink.CodeRateLimited && e.RetryAfter > time.Second
	}
	steps := []struct {
		replica  int
		instance string
		limited  bool
	}{
		{0, "eu", false}, // eu's one call
		{1, "eu", true},  // the other replica finds eu's budget spent
		{0, "eu", true},
		{1, "us", false}, // us has a budget of its own
	}
	for k, s := range steps {
		err := call(replicas[s.replica], s.instance)
		if limited(err) != s.limited || (!s.limited && err != nil) {
			t.Errorf("step %d (replica %d, %s): got %v, want limited %v", k, s.replica, s.instance, err, s.limited)
		}
	}
	if n := discoverytest.Counters(t, sim, "eu").Queries["#get_device_basic_infos"]; n != 1 {
		t.Errorf("eu answered %d queries, want 1", n)
	}
}

func TestLimiterKeysAndBadInstances(t *testing.T) {
	cfg := config.Default()
	cfg.Instances = []config.Instance{{Name: "eu", APIURL: "https://a.example", TokenURL: "https://b.example",
		ClientID: "id", ClientSecret: "secret", Limits: &config.Limits{EngineRequestsPerSecond: 5}}}
	if got := instances.NQLKey("eu"); got != "nql:eu" {
		t.Errorf("NQL key: got %q", got)
	}
	if got := instances.ActionsKey("eu"); got != "act:eu" {
		t.Errorf("actions key: got %q", got)
	}
	set, err := instances.New(cfg, ratelimit.NewShared(nil), instances.Options{})
	if err != nil || len(set.List()) != 1 {
		t.Fatalf("got %v, %v", set, err)
	}
	cfg.Instances[0].APIURL = "ftp://nope"
	if _, err := instances.New(cfg, ratelimit.NewShared(nil), instances.Options{}); err == nil {
		t.Error("a bad API URL: got no error")
	}
}
