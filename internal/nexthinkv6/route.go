package nexthinkv6

import (
	"context"
	"strings"
	"time"
)

// route is the Engine that last answered for a device, and when that was learned.
type route struct {
	engine  string // empty: Memory has no route (remembered until checked is old)
	at      int64  // unix nanoseconds of the driver's clock
	checked int64  // when Memory was last read or written for it; 0: never
	saved   int64  // the learned time Memory holds; 0: none
}

// maxRoutes bounds the route memory; past it, the oldest half is forgotten.
const maxRoutes = 200_000

// routed returns the Engine a device (key "uid:..." or "name:...") is routed to,
// when the route is fresh and the Engine is in the list and up; else nil.
func (d *Driver) routed(ctx context.Context, key string, engines []*engineState) *engineState {
	d.recall(ctx, []string{key})
	now := d.now().UnixNano()
	d.mu.Lock()
	r := d.routes[key]
	d.mu.Unlock()
	if r.engine == "" || now-r.at > d.cfg.RouteTTL.Nanoseconds() {
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

// recall reads from Memory, in one call, the routes of keys that this process
// has not read or written there for RouteCacheTTL: another process may have
// learned a route, or seen the device move. A route learned here later than
// Memory's copy stays.
func (d *Driver) recall(ctx context.Context, keys []string) {
	if d.cfg.Memory == nil {
		return
	}
	now := d.now().UnixNano()
	var stale []string
	d.mu.Lock()
	for _, k := range keys {
		if r, ok := d.routes[k]; !ok || now-r.checked > d.cfg.RouteCacheTTL.Nanoseconds() {
			stale = append(stale, k)
		}
	}
	d.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	got, err := d.cfg.Memory.Routes(ctx, d.cfg.Instance, stale)
	if err != nil {
		d.log.Warn("nexthink v6 routes unreadable, using this process's", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range stale {
		r := d.routes[k]
		if s, found := got[k]; found && s.LearnedAt.UnixNano() >= r.at {
			r.engine, r.at, r.saved = s.Engine, s.LearnedAt.UnixNano(), s.LearnedAt.UnixNano()
		}
		r.checked = now // a miss is remembered too: the fan-out that follows teaches it
		d.routes[k] = r
	}
	d.trimRoutes(now)
}

// learn routes the devices of rows to the Engines that answered them, here and,
// with a Memory, for every process: a route that changed Engine at once, one
// confirmed again when Memory's copy is older than a quarter of RouteTTL.
func (d *Driver) learn(ctx context.Context, rows []tagged) {
	now := d.now().UnixNano()
	var save []StoredRoute
	d.mu.Lock()
	put := func(key, engine string) {
		old := d.routes[key]
		r := route{engine: engine, at: now, checked: old.checked, saved: old.saved}
		if d.cfg.Memory != nil && (old.engine != engine || now-old.saved > d.cfg.RouteTTL.Nanoseconds()/4) {
			save = append(save, StoredRoute{Key: key, Engine: engine, LearnedAt: time.Unix(0, now)})
			r.saved, r.checked = now, now
		}
		d.routes[key] = r
	}
	for _, t := range rows {
		if uid, ok := t.row[colCollectorUID].(string); ok && uid != "" {
			put("uid:"+strings.ToLower(uid), t.e.Name)
		}
		if name, ok := t.row[colDeviceName].(string); ok && name != "" {
			put("name:"+strings.ToLower(name), t.e.Name)
		}
	}
	d.trimRoutes(now)
	d.mu.Unlock()
	d.saveRoutes(ctx, save)
}

// learnOnly records routes in Memory without keeping them in this process (a
// discovery's export: every device of the fleet, most never asked about here).
// Without a Memory it is learn.
func (d *Driver) learnOnly(ctx context.Context, rows []tagged) {
	if d.cfg.Memory == nil {
		d.learn(ctx, rows)
		return
	}
	at := d.now()
	save := make([]StoredRoute, 0, 2*len(rows))
	for _, t := range rows {
		if uid, ok := t.row[colCollectorUID].(string); ok && uid != "" {
			save = append(save, StoredRoute{Key: "uid:" + strings.ToLower(uid), Engine: t.e.Name, LearnedAt: at})
		}
		if name, ok := t.row[colDeviceName].(string); ok && name != "" {
			save = append(save, StoredRoute{Key: "name:" + strings.ToLower(name), Engine: t.e.Name, LearnedAt: at})
		}
	}
	d.saveRoutes(ctx, save)
}

func (d *Driver) saveRoutes(ctx context.Context, save []StoredRoute) {
	if len(save) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), memoryTimeout)
	defer cancel()
	if err := d.cfg.Memory.SaveRoutes(ctx, d.cfg.Instance, save); err != nil {
		// The route is still known here; the other processes fan out once more.
		d.log.Warn("nexthink v6 routes not saved", "routes", len(save), "err", err)
	}
}

// trimRoutes forgets old routes past maxRoutes; d.mu is held.
func (d *Driver) trimRoutes(now int64) {
	if len(d.routes) <= maxRoutes {
		return
	}
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

// RouteOf returns the Engine a device's collector UID is routed to in this
// process, if any (for operators and tests).
func (d *Driver) RouteOf(collectorUID string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.routes["uid:"+strings.ToLower(collectorUID)]
	return r.engine, ok && r.engine != ""
}
