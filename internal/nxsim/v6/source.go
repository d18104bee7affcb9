package v6

import (
	"context"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// engineSource is one Engine's view of the fleet: the devices placed on it,
// their events, the users who used them, and the remote-action executions of the
// devices it owns. A device that moved away is seen as it was movedBefore
// earlier: older last_seen, no events after it, no executions.
type engineSource struct {
	f *fleet.Fleet
	p *placement
	e int
}

var (
	_ nxql.Source  = (*engineSource)(nil)
	_ nxql.Indexer = (*engineSource)(nil)
)

// staleRow is a row of a device (or linked to one) that moved away: it reports
// the device as the Engine last saw it.
type staleRow struct {
	fleet.Row
	lastSeen time.Time
}

func (r staleRow) Value(field string) any {
	if field == "device.last_seen" {
		return r.lastSeen
	}
	// The Engine never heard of a collection after the device left it.
	if rest, ok := strings.CutPrefix(field, "remote_action."); ok {
		if id, _, ok := strings.Cut(rest, ".execution."); ok {
			if at, ok := r.Row.Value("remote_action." + id + ".execution.time").(time.Time); ok && at.After(r.lastSeen) {
				return nil
			}
		}
	}
	return r.Row.Value(field)
}

// deviceOf returns the index of the device a row is or links to.
func (s *engineSource) deviceOf(r fleet.Row) (int, bool) {
	uid, ok := r.Value("device.collector.uid").(string)
	if !ok {
		return 0, false
	}
	return s.f.DeviceByCollectorUID(uid)
}

// view decides whether row r (a device or an event linked to one) is visible on
// this Engine and how: ok false hides it; a stale device's rows are wrapped and
// its events after the move hidden. timeField is the row's event time, "" for
// device rows.
func (s *engineSource) view(r fleet.Row, table, timeField string) (nxql.Row, bool) {
	i, ok := s.deviceOf(r)
	if !ok {
		return nil, false
	}
	listed, stale := s.p.on(s.e, i)
	if !listed {
		return nil, false
	}
	if !stale {
		return r, true
	}
	if table == "remote_action.executions" {
		return nil, false // executions run where the device is now
	}
	last := s.f.Device(i).LastSeen.Add(-movedBefore)
	if timeField != "" {
		if t, ok := r.Value(timeField).(time.Time); ok && t.After(last) {
			return nil, false
		}
	}
	return staleRow{r, last}, true
}

// timeFields are the event times of the fleet's event tables.
var timeFields = map[string]string{
	"session.events":            "session.events.end_time",
	"device_performance.events": "device_performance.events.end_time",
	"execution.crashes":         "execution.crashes.time",
	"remote_action.executions":  "remote_action.executions.time",
}

func (s *engineSource) Scan(ctx context.Context, table string, from, to time.Time, fn func(nxql.Row) error) error {
	if table == "users" {
		return s.f.Scan(ctx, table, from, to, func(r fleet.Row) error {
			for _, i := range s.f.DevicesOfUser(r) {
				if listed, _ := s.p.on(s.e, i); listed {
					return fn(r)
				}
			}
			return nil
		})
	}
	return s.f.Scan(ctx, table, from, to, func(r fleet.Row) error {
		if v, ok := s.view(r, table, timeFields[table]); ok {
			return fn(v)
		}
		return nil
	})
}

func (s *engineSource) Related(ctx context.Context, obj nxql.Row, table string, from, to time.Time, fn func(nxql.Row) error) error {
	if st, ok := obj.(staleRow); ok {
		obj = st.Row
	}
	return s.f.Related(ctx, obj, table, from, to, func(r fleet.Row) error {
		if v, ok := s.view(r, table, timeFields[table]); ok {
			return fn(v)
		}
		return nil
	})
}

func (s *engineSource) Lookup(ctx context.Context, table, field string, values []string) ([]nxql.Row, bool) {
	rows, ok := s.f.Lookup(ctx, table, field, values)
	if !ok {
		return nil, false
	}
	var out []nxql.Row
	for _, r := range rows {
		if table == "users" {
			for _, i := range s.f.DevicesOfUser(r) {
				if listed, _ := s.p.on(s.e, i); listed {
					out = append(out, r)
					break
				}
			}
			continue
		}
		if v, ok := s.view(r, table, timeFields[table]); ok {
			out = append(out, v)
		}
	}
	return out, true
}
