package devices

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// status reports every configured instance (and any other the database knows):
// health, last discovery, next one due, and cache sizes.
func (s *identifierService) status(ctx context.Context, refresh time.Duration) (events.StatusGetReply, error) {
	unavailable := func(err error) error {
		return problem.Wrap(problem.ServiceUnavailable, err, "the status cannot be read right now").Retry(time.Second)
	}
	health, err := s.cache.InstancesHealth(ctx)
	if err != nil {
		return events.StatusGetReply{}, unavailable(err)
	}
	latest, good, err := s.cache.LatestDiscoveryRuns(ctx)
	if err != nil {
		return events.StatusGetReply{}, unavailable(err)
	}
	sizes, err := s.cache.CacheSizes(ctx)
	if err != nil {
		return events.StatusGetReply{}, unavailable(err)
	}
	engines, err := s.cache.V6Engines(ctx)
	if err != nil {
		return events.StatusGetReply{}, unavailable(err)
	}
	enginesOf := s.engineStatus(engines)
	byName := map[string]store.InstanceHealth{}
	names := append([]string(nil), s.order...)
	for _, h := range health {
		if _, ok := byName[h.Name]; !ok && !contains(names, h.Name) {
			names = append(names, h.Name) // no longer configured, still in the database
		}
		byName[h.Name] = h
	}
	reply := events.StatusGetReply{Header: events.NewHeader(events.TypeStatusGetReply), Instances: []events.InstanceStatus{}}
	for _, name := range names {
		st := events.InstanceStatus{Name: name, State: "unknown", Upstream: s.upstreams[name], Engines: enginesOf[name]}
		if h, ok := byName[name]; ok {
			st.State, st.DownSince = "down", wire.UTC(h.DownSince)
			if h.Up {
				st.State = "up"
			}
		}
		if r, ok := latest[name]; ok {
			info := wire.DiscoveryRun(r)
			st.LastDiscovery = &info
			if contains(s.order, name) {
				next := r.StartedAt.Add(refresh).UTC()
				st.NextDiscoveryAt = &next
			}
		}
		if r, ok := good[name]; ok {
			st.LastSuccessAt = wire.UTC(r.EndedAt)
			if st.State == "up" {
				st.DataAsOf = wire.UTC(r.DataAsOf)
			}
		}
		c := sizes[name]
		st.Cache = events.CacheSize{Devices: c.Devices, Users: c.Users, Activities: c.Activities}
		reply.Cache.Devices += c.Devices
		reply.Cache.Users += c.Users
		reply.Cache.Activities += c.Activities
		reply.Instances = append(reply.Instances, st)
	}
	return reply, nil
}

// engineLister is a V6 driver: it names the Engines it knows in this process
// (configured, or the Portal's list as read here), and those of its configuration
// (none when the list is the Portal's).
type engineLister interface {
	Engines() []string
	EnginesConfigured() []string
}

// engineStatus is every Engine of each V6 instance configured here, by name: those
// a process reported (or recorded from its list), and those this process's driver
// knows that none has yet. An Engine no call has reached is unknown. A row of an
// instance not configured here, or of an Engine its configuration no longer names,
// is left out: its row stays until the pruner's retention.v6_engines.
func (s *identifierService) engineStatus(engines []store.V6Engine) map[string][]events.EngineStatus {
	out := map[string][]events.EngineStatus{}
	seen := map[string]bool{}
	configured := map[string]bool{}
	fixed := map[string]bool{} // the instances whose Engines are configured
	for instance, l := range s.engines {
		for _, name := range l.EnginesConfigured() {
			configured[instance+"/"+name] = true
			fixed[instance] = true
		}
	}
	for _, e := range engines {
		if _, ok := s.engines[e.Instance]; !ok || fixed[e.Instance] && !configured[e.Instance+"/"+e.Engine] {
			continue
		}
		seen[e.Instance+"/"+e.Engine] = true
		st := events.EngineStatus{Name: e.Engine, State: "unknown"}
		if e.Reached() {
			st = events.EngineStatus{Name: e.Engine, State: "up", DownSince: wire.UTC(e.DownSince), LastSuccessAt: wire.UTC(e.LastSuccessAt),
				ConsecutiveFailures: e.ConsecutiveFailures, LastError: e.LastError, ObservedAt: wire.UTC(&e.ObservedAt)}
			if e.Down {
				st.State = "down"
			}
		}
		out[e.Instance] = append(out[e.Instance], st)
	}
	for instance, l := range s.engines {
		added := false
		for _, name := range l.Engines() {
			if !seen[instance+"/"+name] {
				out[instance] = append(out[instance], events.EngineStatus{Name: name, State: "unknown"})
				added = true
			}
		}
		if added {
			slices.SortFunc(out[instance], func(a, b events.EngineStatus) int { return strings.Compare(a.Name, b.Name) })
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
