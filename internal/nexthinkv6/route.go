package nexthinkv6

import (
	"strings"
)

// route is the Engine that last answered for a device, and when that was learned.
type route struct {
	engine string
	at     int64 // unix nanoseconds of the driver's clock
}

// maxRoutes bounds the route memory; past it, the oldest half is forgotten.
const maxRoutes = 200_000

// routed returns the Engine a device (key "uid:..." or "name:...") is routed to,
// when the route is fresh and the Engine is in the list and up; else nil.
func (d *Driver) routed(key string, engines []*engineState) *engineState {
	d.mu.Lock()
	r, ok := d.routes[key]
	d.mu.Unlock()
	if !ok || d.now().UnixNano()-r.at > d.cfg.RouteTTL.Nanoseconds() {
		return nil
	}
	for _, e := range engines {
		if e.Name == r.engine {
			if d.isDown(e) {
				return nil
			}
			return e
		}
	}
	return nil
}

// learn routes the devices of rows to e.
func (d *Driver) learn(e *engineState, rows []map[string]any) {
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range rows {
		if uid, ok := r[colCollectorUID].(string); ok && uid != "" {
			d.routes["uid:"+strings.ToLower(uid)] = route{e.Name, now}
		}
		if name, ok := r[colDeviceName].(string); ok && name != "" {
			d.routes["name:"+strings.ToLower(name)] = route{e.Name, now}
		}
	}
	if len(d.routes) > maxRoutes {
		cut := now - d.cfg.RouteTTL.Nanoseconds()/2
		for k, r := range d.routes {
			if r.at < cut {
				delete(d.routes, k)
			}
		}
		if len(d.routes) > maxRoutes*3/4 { // all recent: start over rather than sweep on every call
			clear(d.routes)
		}
	}
}

// RouteOf returns the Engine a device's collector UID is routed to, if any (for
// operators and tests).
func (d *Driver) RouteOf(collectorUID string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.routes["uid:"+strings.ToLower(collectorUID)]
	return r.engine, ok
}
