package ratelimit_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// replica is what one dexbridge process has: its own pool on the shared database,
// whose statements are counted, and its own limiters.
type replica struct {
	pool       *pgxpool.Pool
	limiters   *ratelimit.Shared
	statements *statementCounter
}

// statementCounter counts the statements a pool sends.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {
	c.n.Add(1)
}

// newReplicas opens n replicas on one fresh, migrated schema.
func newReplicas(t testing.TB, n int) []*replica {
	t.Helper()
	url := testenv.PostgresURL(t)
	ctx := context.Background()
	var out []*replica
	for i := range n {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		counter := &statementCounter{}
		cfg.ConnConfig.Tracer = counter
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if i == 0 {
			if _, err := store.Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
		}
		counter.n.Store(0)
		out = append(out, &replica{pool: pool, limiters: ratelimit.NewShared(store.New(pool)), statements: counter})
	}
	return out
}

// tally is what a load generator saw: the time of every grant, and the refusals.
type tally struct {
	mu      sync.Mutex
	grants  []time.Time
	refused int
}

func (s *tally) merge(grants []time.Time, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants = append(s.grants, grants...)
	s.refused += refused
}

// hammer calls l.Take(ctx, 0) from workers goroutines as fast as they go until stop,
// and records the grants at the time the call may be made.
func hammer(t testing.TB, ctx context.Context, l ratelimit.Limiter, workers int, stop time.Time, into *tally) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var grants []time.Time
			refused := 0
			for time.Now().Before(stop) {
				d, err := l.Take(ctx, 0)
				var lim *ratelimit.Limited
				switch {
				case errors.As(err, &lim):
					if lim.RetryAfter <= 0 {
						t.Errorf("refusal without a retry delay: %v", lim)
					}
					refused++
					runtime.Gosched() // hard, but leave the leases a chance to land
				case err != nil:
					t.Error(err)
					return
				default:
					if d != 0 {
						t.Errorf("maxWait 0 granted a wait of %v", d)
					}
					grants = append(grants, time.Now())
				}
			}
			into.merge(grants, refused)
		})
	}
	return &wg
}

// windowCounts slides a window of length w over the sorted times, in steps of step,
// from start until the window's end passes end, and returns each window's count.
func windowCounts(times []time.Time, start, end time.Time, w, step time.Duration) []int {
	slices.SortFunc(times, time.Time.Compare)
	var out []int
	for from := start; !from.Add(w).After(end); from = from.Add(step) {
		lo, _ := slices.BinarySearchFunc(times, from, time.Time.Compare)
		hi, _ := slices.BinarySearchFunc(times, from.Add(w), time.Time.Compare)
		out = append(out, hi-lo)
	}
	return out
}

func countIn(times []time.Time, from, to time.Time) int {
	n := 0
	for _, g := range times {
		if !g.Before(from) && g.Before(to) {
			n++
		}
	}
	return n
}
