package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestSharedBudgetAcrossReplicas: four "replicas" (own pools, same database) hammer
// one key at 20/s with burst 5 for about two seconds; the grants fit the budget.
func TestSharedBudgetAcrossReplicas(t *testing.T) {
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	var limiters []ratelimit.Limiter
	for range 4 {
		pool, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if _, err := store.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		limiters = append(limiters, ratelimit.NewShared(store.New(pool)).Limiter("tenant:eu:nql", ratelimit.Rate{PerSecond: 20, Burst: 5}))
	}
	var granted, refused atomic.Int64
	start := time.Now()
	const window = 2 * time.Second
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < window {
					d, err := l.Take(ctx, 0)
					var lim *ratelimit.Limited
					switch {
					case errors.As(err, &lim):
						if lim.RetryAfter <= 0 {
							t.Errorf("refusal without a retry delay")
						}
						refused.Add(1)
					case err != nil:
						t.Error(err)
						return
					default:
						if d != 0 {
							t.Errorf("maxWait 0 granted a wait of %v", d)
						}
						granted.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	// GCRA bound: burst + rate × elapsed.
	if got, limit := float64(granted.Load()), 5+20*elapsed+1; got > limit {
		t.Errorf("granted %v calls in %.2fs, want at most %.0f", got, elapsed, limit)
	}
	if granted.Load() < 20 || refused.Load() == 0 {
		t.Errorf("granted %d, refused %d: want the budget used and the excess refused", granted.Load(), refused.Load())
	}
}

func TestWaitWithinPatience(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	l := ratelimit.NewShared(db).Limiter("k", ratelimit.Rate{PerSecond: 10, Burst: 1})
	ctx := context.Background()
	if d, err := l.Take(ctx, 0); err != nil || d != 0 {
		t.Fatalf("first call: got %v, %v; want immediate", d, err)
	}
	d, err := l.Take(ctx, time.Second)
	if err != nil || d <= 0 || d > 100*time.Millisecond {
		t.Fatalf("second call with patience: got %v, %v; want a wait of up to 100ms", d, err)
	}
	// Two slots are now reserved; a caller unwilling to wait is refused and the
	// refusal reserves nothing.
	_, err = l.Take(ctx, 0)
	var lim *ratelimit.Limited
	if !errors.As(err, &lim) {
		t.Fatalf("impatient call: got %v, want Limited", err)
	}
	if p := lim.Problem("too many calls"); p.Code != "rate_limited" || p.RetryAfter <= 0 {
		t.Errorf("problem: got %+v", p)
	}
}

func TestLocal(t *testing.T) {
	l := ratelimit.NewLocal("k", ratelimit.Rate{PerSecond: 1, Burst: 2})
	ctx := context.Background()
	for i := range 2 {
		if _, err := l.Take(ctx, 0); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	if _, err := l.Take(ctx, 0); err == nil {
		t.Fatal("third call: want refusal")
	}
	if d, err := l.Take(ctx, 2*time.Second); err != nil || d <= 0 {
		t.Fatalf("patient call: got %v, %v; want a wait", d, err)
	}
}
