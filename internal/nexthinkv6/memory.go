package nexthinkv6

import (
	"context"
	"time"
)

// Memory is where a driver shares what it learns with the drivers of the other
// processes (every worker scales horizontally): the devices' routes and the
// Engines' health. Config.Memory nil keeps both in this process alone.
type Memory interface {
	// Routes reads the routes of keys ("uid:..." or "name:...", lower case).
	Routes(ctx context.Context, instance string, keys []string) (map[string]StoredRoute, error)
	// SaveRoutes records routes; one learned earlier than the stored one is ignored.
	SaveRoutes(ctx context.Context, instance string, routes []StoredRoute) error
	// SaveEngine records an observation of an Engine's health; one observed earlier
	// than the stored one is ignored.
	SaveEngine(ctx context.Context, instance string, h EngineHealth) error
	// ListEngines records the Engines of the instance's list (configured, or the
	// Portal's), so they are known before any call reaches them; an Engine a
	// call reached is left as it is.
	ListEngines(ctx context.Context, instance string, names []string) error
}

// StoredRoute is a route as Memory keeps it.
type StoredRoute struct {
	Key       string
	Engine    string
	LearnedAt time.Time
}

// memoryTimeout bounds a write to Memory made in the background.
const memoryTimeout = 5 * time.Second
