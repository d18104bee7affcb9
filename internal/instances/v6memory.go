package instances

import (
	"context"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/store"
)

// v6Memory keeps the V6 drivers' routes and Engine health in PostgreSQL, so
// every process of the deployment shares them.
type v6Memory struct{ db *store.DB }

func (m v6Memory) Routes(ctx context.Context, instance string, keys []string) (map[string]nexthinkv6.StoredRoute, error) {
	got, err := m.db.V6Routes(ctx, instance, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]nexthinkv6.StoredRoute, len(got))
	for k, r := range got {
		out[k] = nexthinkv6.StoredRoute{Key: r.Key, Engine: r.Engine, LearnedAt: r.LearnedAt}
	}
	return out, nil
}

func (m v6Memory) SaveRoutes(ctx context.Context, instance string, routes []nexthinkv6.StoredRoute) error {
	rs := make([]store.V6Route, len(routes))
	for k, r := range routes {
		rs[k] = store.V6Route{Key: r.Key, Engine: r.Engine, LearnedAt: r.LearnedAt}
	}
	return m.db.SaveV6Routes(ctx, instance, rs)
}

func (m v6Memory) SaveEngine(ctx context.Context, instance string, h nexthinkv6.EngineHealth) error {
	return m.db.SaveV6Engine(ctx, store.V6Engine{Instance: instance, Engine: h.Name, Down: h.Down, DownSince: timeOrNil(h.DownSince),
		ConsecutiveFailures: h.Failures, LastSuccessAt: timeOrNil(h.LastSuccess), LastError: h.LastError, ObservedAt: h.ObservedAt})
}

func (m v6Memory) ListEngines(ctx context.Context, instance string, names []string) error {
	return m.db.ListV6Engines(ctx, instance, names, time.Now())
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
