package devices

import (
	"context"
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
	enginesOf := map[string][]events.EngineStatus{}
	for _, e := range engines {
		st := events.EngineStatus{Name: e.Engine, State: "up", DownSince: wire.UTC(e.DownSince), LastSuccessAt: wire.UTC(e.LastSuccessAt),
			ConsecutiveFailures: e.ConsecutiveFailures, LastError: e.LastError, ObservedAt: e.ObservedAt.UTC()}
		if e.Down {
			st.State = "down"
		}
		enginesOf[e.Instance] = append(enginesOf[e.Instance], st)
	}
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
