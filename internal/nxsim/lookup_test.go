package nxsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// scanOnly hides the source's indexes, so the evaluator scans every device.
type scanOnly struct{ nql.Source }

// TestIdentificationIndexMatchesScan runs the identification queries for users
// picked at random (seeded) with the user-to-devices index and with a full scan:
// the answers must be the same.
func TestIdentificationIndexMatchesScan(t *testing.T) {
	s, err := NewServer(Config{FleetSize: 3000, Seed: 7, TopicsDir: "../../topics", QueriesFile: "../../config/queries.yaml",
		Tenants: []TenantConfig{{Name: "eu"}}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	tn := s.tenants[0]
	ctx := context.Background()
	now := time.Now()
	opts := nql.RunOptions{Now: now, MaxRows: 1000}

	users, err := nql.Compile("users | list user.name, user.upn", nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := users.Run(ctx, tn.src, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 17))
	found := 0
	for range 40 {
		u := all.Rows[rng.IntN(len(all.Rows))]
		for _, c := range []struct{ query, param string }{
			{"#get_device_basic_infos", "username"},
			{"#get_device_basic_infos_by_upn", "upn"},
		} {
			value := fmt.Sprint(u[0])
			if c.param == "upn" {
				value = fmt.Sprint(u[1])
			}
			q, ok := tn.queries.get(c.query)
			if !ok {
				t.Fatalf("no query %s", c.query)
			}
			params := map[string]string{c.param: value}
			indexed, err := q.Plan.Run(ctx, tn.src, params, opts)
			if err != nil {
				t.Fatal(err)
			}
			scanned, err := q.Plan.Run(ctx, scanOnly{tn.src}, params, opts)
			if err != nil {
				t.Fatal(err)
			}
			found += len(indexed.Rows)
			if got, want := fmt.Sprint(indexed.Rows), fmt.Sprint(scanned.Rows); got != want {
				t.Errorf("%s %s=%q: indexed %s, scanned %s", c.query, c.param, value, got, want)
			}
		}
	}
	if found == 0 {
		t.Error("no user had a device: the comparison proved nothing")
	}
}
