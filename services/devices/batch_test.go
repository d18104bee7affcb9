package devices_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/store"
)

// storeKeys are the cache's attribute of each user identification key.
var storeKeys = map[string]store.UserKey{
	events.KeyUsername: store.ByUserName, events.KeyUPN: store.ByUPN, events.KeyEmail: store.ByEmail, events.KeySID: store.BySID,
}

// TestBatchedLookUpsAnswerAsSingleOnes: the look-ups of random fleet users of both
// tenants, by each identifier form, on every instance and on each one, answered in
// one statement, get exactly what each gets on its own (devices, order, who matched
// and how); and identifications sent 16 at once, which the worker reads in batches,
// are answered as one at a time.
func TestBatchedLookUpsAnswerAsSingleOnes(t *testing.T) {
	e := newEnv(t, envOptions{discover: true})
	ctx := context.Background()
	var qs []store.UserQuery
	var values []string
	for i, tenant := range []string{"eu", "us"} {
		for _, d := range e.sample(tenant, nxsim.Sample{N: 25, Seed: uint64(41 + i)}) {
			for _, id := range []struct{ key, value string }{
				{events.KeyUsername, d.User}, {events.KeyUsername, `CORP\` + d.User}, {events.KeyUsername, d.UserUPN},
				{events.KeyUPN, d.UserUPN}, {events.KeySID, d.UserSID}, {events.KeyUsername, "nobody-" + d.Name},
			} {
				if id.value == "" {
					continue
				}
				var sm []store.UserMatch
				for _, m := range events.UserMatches(id.key, id.value) {
					sm = append(sm, store.UserMatch{Key: storeKeys[m.Key], Value: m.Value, MatchedBy: m.MatchedBy})
				}
				for _, instance := range []string{"", "eu", "us"} {
					qs = append(qs, store.UserQuery{Matches: sm, Instance: instance, Limit: 3 + len(qs)%5})
				}
				if id.key == events.KeyUsername {
					values = append(values, id.value)
				}
			}
		}
	}
	batched, err := e.db.DevicesOfUsers(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for i, q := range qs {
		single, err := e.db.DevicesOfUser(ctx, q.Matches, q.Instance, q.Limit)
		if err != nil {
			t.Fatal(err)
		}
		found += len(single)
		if len(single) != len(batched[i]) || (len(single) > 0 && !reflect.DeepEqual(single, batched[i])) {
			t.Errorf("look-up %+v: batched %+v, single %+v", q, batched[i], single)
		}
	}
	if found == 0 {
		t.Fatal("no look-up found a device: the comparison is empty")
	}

	// Through the worker, all at once.
	one := map[string]identifyAnswer{}
	for _, v := range values {
		code, a := e.identify(events.KeyUsername, v)
		if code != 200 {
			t.Fatalf("username=%s: %d", v, code)
		}
		one[v] = a
	}
	// As many at once as the worker handles (envOptions' Concurrency): they queue for
	// its statements, not for its handlers.
	var wg sync.WaitGroup
	slots := make(chan struct{}, 16)
	for _, v := range values {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			code, a := e.identify(events.KeyUsername, v)
			if code != 200 || !reflect.DeepEqual(a.Devices, one[v].Devices) {
				t.Errorf("username=%s at once: %d %+v, one at a time %+v", v, code, a.Devices, one[v].Devices)
			}
		})
	}
	wg.Wait()
	t.Logf("%d look-ups in one statement (%d devices); %d identifications, 16 at once", len(qs), found, len(values))
}
