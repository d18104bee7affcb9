package nexthinkv6

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthink"
)

// engineState is an Engine and its health as this process sees it; its fields
// after Engine are guarded by state.mu.
type engineState struct {
	Engine
	fails     int       // consecutive failed calls
	down      bool      // fails reached DownAfter, or the Portal lists it disconnected
	nextProbe time.Time // when a down Engine may be tried again
	lastErr   string
	lastOK    time.Time // its last answer
	downSince time.Time
	reported  time.Time // when Memory was last told of it
}

// EngineHealth is an Engine's health as this process saw it at ObservedAt.
type EngineHealth struct {
	Name        string    `json:"name"`
	Down        bool      `json:"down"`
	DownSince   time.Time `json:"down_since,omitzero"`
	Failures    int       `json:"consecutive_failures"`
	LastSuccess time.Time `json:"last_success_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	ObservedAt  time.Time `json:"observed_at"`
}

// Health reports every known Engine's health, in list order.
func (s *state) Health() []EngineHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EngineHealth, len(s.engines))
	for k, e := range s.engines {
		out[k] = s.healthOf(e)
	}
	return out
}

// healthOf is e's health now; s.mu is held.
func (s *state) healthOf(e *engineState) EngineHealth {
	return EngineHealth{Name: e.Name, Down: e.down, DownSince: e.downSince, Failures: e.fails, LastSuccess: e.lastOK,
		LastError: e.lastErr, ObservedAt: s.now()}
}

// report tells Memory of e's health, in the background (a call does not wait on
// the database); s.mu is held. One writer per driver sends the latest health of
// each Engine in turn, so a report never overtakes a later one of this process;
// observation times order those of several processes.
func (s *state) report(e *engineState) {
	if s.cfg.Memory == nil {
		return
	}
	h := s.healthOf(e)
	e.reported = h.ObservedAt
	if s.unreported == nil {
		s.unreported = map[string]EngineHealth{}
	}
	s.unreported[e.Name] = h
	if s.reporting {
		return
	}
	s.reporting = true
	go s.sendReports()
}

func (s *state) sendReports() {
	for {
		s.mu.Lock()
		batch := s.unreported
		s.unreported = nil
		if len(batch) == 0 {
			s.reporting = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, h := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), memoryTimeout)
			if err := s.cfg.Memory.SaveEngine(ctx, s.cfg.Instance, h); err != nil {
				s.log.Warn("nexthink v6 engine health not saved", "engine", h.Name, "err", err)
			}
			cancel()
		}
	}
}

// usable reports whether e may be called now: it is up, or it is down and its
// probe is due (the probe is given to one caller; the others skip it).
func (s *state) usable(e *engineState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.down {
		return true
	}
	now := s.now()
	if now.Before(e.nextProbe) {
		return false
	}
	e.nextProbe = now.Add(s.cfg.ProbeEvery)
	return true
}

// isDown reports whether e is marked down.
func (s *state) isDown(e *engineState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.down
}

// succeeded records an answer from e.
func (s *state) succeeded(e *engineState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.down {
		s.log.Info("nexthink v6 engine answers again", "engine", e.Name)
	}
	changed := e.fails > 0 || e.down
	e.fails, e.down, e.lastErr, e.downSince = 0, false, "", time.Time{}
	e.lastOK = s.now()
	if changed || e.lastOK.Sub(e.reported) >= s.cfg.HealthEvery {
		s.report(e)
	}
}

// failed records a failed call to e; the DownAfter-th in a row marks it down.
func (s *state) failed(e *engineState, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.fails++
	e.lastErr = err.Error()
	if !e.down && e.fails >= s.cfg.DownAfter {
		e.down, e.downSince = true, s.now()
		e.nextProbe = s.now().Add(s.cfg.ProbeEvery)
		s.log.Warn("nexthink v6 engine marked down", "engine", e.Name, "consecutive_failures", e.fails, "err", err)
	}
	s.report(e)
}

// portalEngine is one element of the Portal's engine list.
type portalEngine struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	UID     string `json:"uid"`
	Status  string `json:"status"`
}

// engineList returns the Engines: the configured ones, else the Portal's list,
// read again every EngineListTTL. A failed refresh keeps the last list.
func (d *Driver) engineList(ctx context.Context) ([]*engineState, error) {
	d.mu.Lock()
	fixed := len(d.cfg.Engines) > 0
	fresh := !d.listedAt.IsZero() && d.now().Sub(d.listedAt) < d.cfg.EngineListTTL
	list := d.engines
	unannounced := fixed && d.listed == "" // a configured list is recorded once (again after a failure)
	d.mu.Unlock()
	if fixed || fresh {
		if unannounced {
			d.announce(list)
		}
		return list, nil
	}
	var got []portalEngine
	body, e := d.portalCall(ctx, "portal.engines", http.MethodGet, "/api/configuration/v1/engines", nil, retryReads)
	if e == nil {
		if err := json.Unmarshal(body, &got); err != nil {
			e = &nexthink.Error{Instance: d.cfg.Instance, Call: "portal.engines", Status: http.StatusOK,
				Code: nexthink.CodeBadResponse, Message: "the engine list is not the expected JSON", Err: err}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e != nil {
		if len(d.engines) > 0 {
			d.log.Warn("nexthink v6 engine list unavailable, keeping the last one", "err", e)
			return d.engines, nil
		}
		return nil, e
	}
	byName := map[string]*engineState{}
	for _, es := range d.engines {
		byName[es.Name] = es
	}
	var out []*engineState
	for _, pe := range got {
		if pe.Name == "" || pe.Address == "" || pe.Port <= 0 || pe.Port > 65535 {
			continue
		}
		u := d.portal.Scheme + "://" + net.JoinHostPort(pe.Address, strconv.Itoa(pe.Port))
		es, ok := byName[pe.Name]
		if !ok || es.URL != u {
			es = &engineState{Engine: Engine{Name: pe.Name, URL: u, UID: pe.UID}}
		}
		es.UID = pe.UID
		// The Portal's word that an Engine is disconnected marks it down at once;
		// its probe still comes, so a stale list does not hide it for long.
		if strings.EqualFold(pe.Status, "DISCONNECTED") && !es.down {
			es.down, es.nextProbe, es.lastErr = true, d.now().Add(d.cfg.ProbeEvery), "the Portal lists it DISCONNECTED"
			es.downSince = d.now()
			d.log.Warn("nexthink v6 engine marked down", "engine", es.Name, "reason", es.lastErr)
			d.report(es)
		}
		out = append(out, es)
	}
	if len(out) == 0 {
		return nil, &nexthink.Error{Instance: d.cfg.Instance, Call: "portal.engines", Status: http.StatusOK,
			Code: nexthink.CodeBadResponse, Message: fmt.Sprintf("the Portal lists no usable Engine (%d entries)", len(got))}
	}
	d.engines, d.listedAt = out, d.now()
	d.announceLocked(out)
	return out, nil
}

// Engines names the Engines this process knows, in list order: the configured
// ones, else the Portal's list as last read here (none before the first call).
func (s *state) Engines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.engines))
	for k, e := range s.engines {
		out[k] = e.Name
	}
	return out
}

// EnginesConfigured names the Engines of the instance's configuration, in its
// order; none when the list is the Portal's.
func (s *state) EnginesConfigured() []string {
	out := make([]string, len(s.cfg.Engines))
	for k, e := range s.cfg.Engines {
		out[k] = e.Name
	}
	return out
}

// announce records list in Memory, in the background, when it differs from the
// list last recorded: the status then names every Engine, even one that no call
// has reached yet.
func (s *state) announce(list []*engineState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announceLocked(list)
}

// announceLocked is announce with s.mu held.
func (s *state) announceLocked(list []*engineState) {
	if s.cfg.Memory == nil {
		return
	}
	names := make([]string, len(list))
	for k, e := range list {
		names[k] = e.Name
	}
	key := strings.Join(names, "\x00")
	if key == s.listed {
		return
	}
	s.listed = key
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), memoryTimeout)
		defer cancel()
		if err := s.cfg.Memory.ListEngines(ctx, s.cfg.Instance, names); err != nil {
			s.log.Warn("nexthink v6 engine list not saved", "err", err)
			s.mu.Lock()
			if s.listed == key {
				s.listed = "" // the next call tries again
			}
			s.mu.Unlock()
		}
	}()
}
