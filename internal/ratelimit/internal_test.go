package ratelimit

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
)

func TestFairLevel(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name     string
		capacity float64
		demands  []float64
		want     float64
	}{
		{"everyone fits", 100, []float64{10, 20, 30}, inf},
		{"one heavy", 100, []float64{1000, 10}, 90},
		{"two heavy share what the light leave", 100, []float64{500, 10, 800}, 45},
		{"all heavy split evenly", 90, []float64{100, 200, 300}, 30},
		{"a light one just under the level", 100, []float64{33, 1000, 1000}, 33.5},
		{"nothing to share", 0, []float64{5}, 0},
		{"no callers", 10, nil, inf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fairLevel(tt.capacity, tt.demands); got != tt.want {
				t.Errorf("fairLevel(%v, %v) = %v, want %v", tt.capacity, tt.demands, got, tt.want)
			}
		})
	}
}

// TestMeter: a steady stream reads as its rate, a young meter is not fooled by its
// youth, and a silent one decays.
func TestMeter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var m meter
	for i := range 500 { // 100/s for 5 s
		m.add(t0.Add(time.Duration(i)*10*time.Millisecond), 1)
	}
	now := t0.Add(5 * time.Second)
	if got := m.rate(now); got < 95 || got > 105 {
		t.Errorf("steady 100/s: got %.1f", got)
	}
	if got := m.rate(now.Add(5 * time.Second)); got > 1 {
		t.Errorf("5 s of silence: got %.1f, want about 0", got)
	}
	var young meter
	for i := range 20 { // 100/s for 0.2 s
		young.add(t0.Add(time.Duration(i)*10*time.Millisecond), 1)
	}
	if got := young.rate(t0.Add(200 * time.Millisecond)); got < 80 || got > 120 {
		t.Errorf("100/s for 0.2 s: got %.1f", got)
	}
}

// failingStore is a database that is down.
type failingStore struct{ calls int }

func (f *failingStore) LeaseRate(context.Context, string, time.Duration, time.Duration, time.Duration, int) (store.RateLease, error) {
	f.calls++
	return store.RateLease{}, errDown
}

var errDown = errors.New("connection refused")

// TestLeaseFailure: while the database is down every call gets its error (a 503 for
// the chatbot, not a 429 nor a free pass), and the limiter asks it again only after
// a pause, not at every call.
func TestLeaseFailure(t *testing.T) {
	db := &failingStore{}
	l := newLeased(db, "cache", Rate{PerSecond: 500, Burst: 500})
	start := time.Now()
	for i := range 1000 {
		if _, err := l.Take(context.Background(), 0); !errors.Is(err, errDown) {
			t.Fatalf("call %d: got %v, want the store's error", i, err)
		}
	}
	if want := 1 + int(time.Since(start)/failureBackoff); db.calls > want {
		t.Errorf("%d leases for 1000 calls in %v, want at most %d", db.calls, time.Since(start), want)
	}
}
