package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestLeaseRate: a budget of 10/s with a burst of 5. An idle budget leases its burst;
// a spent one leases nothing and says when the next cell conforms; a horizon reserves
// cells ahead, one interval apart.
func TestLeaseRate(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	const interval, tolerance = 100 * time.Millisecond, 400 * time.Millisecond
	l, err := db.LeaseRate(ctx, "k", interval, tolerance, 0, 50)
	if err != nil || l.Granted != 5 {
		t.Fatalf("idle budget: got %+v %v, want the burst of 5", l, err)
	}
	if lag := l.Now.Sub(l.First); lag < tolerance-time.Millisecond || lag > tolerance+time.Millisecond {
		t.Errorf("first cell conforms %v before now, want the tolerance %v", lag, tolerance)
	}
	l, err = db.LeaseRate(ctx, "k", interval, tolerance, 0, 50)
	if err != nil || l.Granted != 0 || !l.First.After(l.Now) {
		t.Fatalf("spent budget: got %+v %v, want nothing and a first cell after now", l, err)
	}
	next := l.First
	l, err = db.LeaseRate(ctx, "k", interval, tolerance, time.Second, 3)
	if err != nil || l.Granted != 3 || !l.First.Equal(next) {
		t.Fatalf("horizon of 1s: got %+v %v, want 3 cells from %v", l, err, next)
	}
	l, err = db.LeaseRate(ctx, "k", interval, tolerance, 0, 1)
	if err != nil || l.Granted != 0 || !l.First.Equal(next.Add(3*interval)) {
		t.Errorf("after the reservation: got %+v %v, want nothing before %v", l, err, next.Add(3*interval))
	}
}

// TestLeaseRateConcurrent: leases taken at once from many connections never grant a
// cell twice: the cells' times, all leases together, are one interval apart.
func TestLeaseRateConcurrent(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	ctx := context.Background()
	const interval = time.Millisecond
	var mu sync.Mutex
	var firsts []time.Time
	var granted int
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				l, err := db.LeaseRate(ctx, "k", interval, 0, 50*time.Millisecond, 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j := range l.Granted {
					firsts = append(firsts, l.First.Add(time.Duration(j)*interval))
				}
				granted += l.Granted
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(firsts, time.Time.Compare)
	for i := 1; i < len(firsts); i++ {
		if gap := firsts[i].Sub(firsts[i-1]); gap < interval {
			t.Fatalf("cells at %v and %v: %v apart, want at least %v", firsts[i-1], firsts[i], gap, interval)
		}
	}
	if granted == 0 {
		t.Fatal("nothing granted")
	}
}
