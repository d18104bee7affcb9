package v6

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
)

// EngineInfo is one element of the Portal's engine list.
type EngineInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	UID     string `json:"uid"`    // the database UID engineDatabaseUids names
	Status  string `json:"status"` // CONNECTED, or DISCONNECTED while the Engine is down
}

func (s *Server) engineList() []EngineInfo {
	out := make([]EngineInfo, len(s.engines))
	for k, e := range s.engines {
		status := "CONNECTED"
		if e.getFaults().Down {
			status = "DISCONNECTED"
		}
		out[k] = EngineInfo{Name: e.name, Address: s.cfg.Host, Port: e.port, UID: e.uid, Status: status}
	}
	return out
}

func (s *Server) portalRoutes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !s.authorized(r) {
				w.Header().Set("WWW-Authenticate", `Basic realm="Nexthink Portal"`)
				writePortalError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Authentication required.")
				return
			}
			h(w, r)
		})
	}
	api("GET /api/configuration/v1/engines", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.engineList())
	})
	api("/api/remoteaction/v2/run", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost { // as documented: GET is not supported and answers 404
			writePortalError(w, http.StatusNotFound, "NOT_FOUND", "Use POST.")
			return
		}
		s.handleRun(w, r)
	})

	mux.HandleFunc("GET /_nxsim/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_nxsim/info", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Info()) })
	mux.HandleFunc("GET /_nxsim/counters", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Counters()) })
	mux.HandleFunc("POST /_nxsim/counters/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_nxsim/engines/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		e := s.engineNamed(r.PathValue("name"))
		if e == nil {
			writeControlError(w, http.StatusNotFound, "no engine "+r.PathValue("name"))
			return
		}
		writeJSON(w, http.StatusOK, e.getFaults())
	})
	mux.HandleFunc("PUT /_nxsim/engines/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if !decodeControl(w, r, &f) {
			return
		}
		if err := s.SetFaults(r.PathValue("name"), f); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("GET /_nxsim/executions/settings", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.actions.Settings())
	})
	mux.HandleFunc("PUT /_nxsim/executions/settings", func(w http.ResponseWriter, r *http.Request) {
		var es nxsim.ExecutionSettings
		if !decodeControl(w, r, &es) {
			return
		}
		if es.PendingMS < 0 || es.RunningMS < 0 || es.ExpireAfterMS < 0 {
			writeControlError(w, http.StatusBadRequest, "pending_ms, running_ms and expire_after_ms: want 0 or more")
			return
		}
		s.actions.SetSettings(es)
		writeJSON(w, http.StatusOK, es)
	})
	mux.HandleFunc("GET /_nxsim/executions/{requestUid}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.fleet.ExecutionsOf(r.PathValue("requestUid")))
	})
	mux.HandleFunc("POST /_nxsim/devices/online", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Devices []string `json:"devices"`
			Online  bool     `json:"online"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		var idx []int
		for _, name := range req.Devices {
			i, ok := s.fleet.DeviceByName(name)
			if !ok {
				writeControlError(w, http.StatusNotFound, "no device "+name)
				return
			}
			idx = append(idx, i)
		}
		for _, i := range idx {
			s.fleet.SetOnline(i, req.Online)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writePortalError(w, http.StatusNotFound, "NOT_FOUND", "Not found: "+r.URL.Path)
	})
	return mux
}

func (s *Server) engineNamed(name string) *engine {
	for _, e := range s.engines {
		if e.name == name {
			return e
		}
	}
	return nil
}

// SetFaults replaces the faults of the Engine called name.
func (s *Server) SetFaults(name string, f Faults) error {
	e := s.engineNamed(name)
	if e == nil {
		return fmt.Errorf("no engine %q", name)
	}
	if err := f.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.faults = f
	e.mu.Unlock()
	return nil
}

// MovedDevice is a device that two Engines list.
type MovedDevice struct {
	Name         string `json:"name"`
	CollectorUID string `json:"collector_uid"`
	From         string `json:"from_engine"` // the Engine it left: stale, older last_seen
	To           string `json:"to_engine"`   // the Engine that owns it now
}

// Info describes the emulator for tests and operators.
type Info struct {
	Portal   string        `json:"portal"`
	Username string        `json:"username"`
	Engines  []EngineState `json:"engines"`
	Moved    []MovedDevice `json:"moved"`
	// Scenario maps each named scenario device to the Engine that owns it.
	Scenario map[string]string `json:"scenario"`
}

// EngineState is an Engine as the control API reports it.
type EngineState struct {
	EngineInfo
	URL     string `json:"url"`
	Devices int    `json:"devices"` // devices it owns (moved-away copies excluded)
	Faults  Faults `json:"faults"`
}

// Info reports the Engines, their devices and the moved devices.
func (s *Server) Info() Info {
	owned := make([]int, len(s.engines))
	for _, o := range s.place.owner {
		owned[o]++
	}
	info := Info{Portal: s.portalURL, Username: s.cfg.Username, Scenario: map[string]string{}}
	for k, ei := range s.engineList() {
		info.Engines = append(info.Engines, EngineState{EngineInfo: ei, URL: s.EngineURL(k), Devices: owned[k], Faults: s.engines[k].getFaults()})
	}
	for _, i := range s.MovedDevices() {
		d := s.fleet.Device(i)
		info.Moved = append(info.Moved, MovedDevice{Name: d.Name, CollectorUID: d.CollectorUID,
			From: s.engines[s.place.left[i]].name, To: s.engines[s.place.owner[i]].name})
	}
	for i, name := range s.fleet.ScenarioNames() {
		info.Scenario[name] = s.engines[s.place.owner[i]].name
	}
	return info
}

// MovedDevices returns the indices of the devices that moved, sorted.
func (s *Server) MovedDevices() []int {
	out := make([]int, 0, len(s.place.left))
	for i := range s.place.left {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// OwnerOf returns the index of the Engine that owns device i.
func (s *Server) OwnerOf(i int) int { return int(s.place.owner[i]) }

// EngineCounters are one Engine's call counts.
type EngineCounters struct {
	Calls   int `json:"calls"`   // requests received, whatever their outcome
	Queries int `json:"queries"` // NXQL queries answered
}

// Counters returns each Engine's counters, by name.
func (s *Server) Counters() map[string]EngineCounters {
	out := map[string]EngineCounters{}
	for _, e := range s.engines {
		e.mu.Lock()
		out[e.name] = EngineCounters{Calls: e.calls, Queries: e.queries}
		e.mu.Unlock()
	}
	return out
}

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() {
	for _, e := range s.engines {
		e.mu.Lock()
		e.calls, e.queries = 0, 0
		e.mu.Unlock()
	}
}

// runRequest is the body of POST /api/remoteaction/v2/run. Keys match without
// regard to case, so the v1 spelling (RemoteActionUid, DeviceUids) is accepted.
type runRequest struct {
	RequestUID         string            `json:"requestUid"`
	RemoteActionUID    string            `json:"remoteActionUid"`
	DeviceUIDs         []string          `json:"deviceUids"`
	EngineDatabaseUIDs []string          `json:"engineDatabaseUids"`
	TimeoutSeconds     *int              `json:"timeoutSeconds"`
	Params             map[string]string `json:"params"`
}

// RunResponse is the Portal's answer to a run: one entry per targeted Engine.
type RunResponse struct {
	RequestUID string           `json:"requestUid"`
	Engines    []EngineResponse `json:"engines"`
}

// EngineResponse says what one Engine did with a run.
type EngineResponse struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
	// Status: OK (the Engine took the devices it holds, listed in DeviceUIDs),
	// TIMEOUT (no answer within timeoutSeconds), UNAVAILABLE (Engine down) or
	// REFUSED (the Engine answered an error).
	Status     string   `json:"status"`
	DeviceUIDs []string `json:"deviceUids"`
}

// Limits of a run request.
const (
	defaultTimeoutSeconds = 60
	maxTimeoutSeconds     = 3600
	maxRunDevices         = 10000
)

// handleRun serves POST /api/remoteaction/v2/run: it dispatches the run to the
// targeted Engines (all when engineDatabaseUids is empty) and answers when every
// Engine answered or timeoutSeconds passed. Each Engine creates executions for
// the devices it owns; an execution whose device does not come online within
// timeoutSeconds expires.
func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		writePortalError(w, http.StatusBadRequest, "INVALID_REQUEST", "Request body too large or unreadable.")
		return
	}
	var req runRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		writePortalError(w, http.StatusBadRequest, "INVALID_REQUEST", "The body is not a JSON run request.")
		return
	}
	if req.RemoteActionUID == "" {
		writePortalError(w, http.StatusBadRequest, "INVALID_REMOTE_ACTION", "remoteActionUid is required.")
		return
	}
	action, ok := s.actions.Find(req.RemoteActionUID)
	if !ok {
		writePortalError(w, http.StatusNotFound, "REMOTE_ACTION_NOT_FOUND", "No remote action with UID "+req.RemoteActionUID+".")
		return
	}
	if !action.APIEnabled {
		writePortalError(w, http.StatusForbidden, "REMOTE_ACTION_NOT_API_ENABLED", "The remote action "+action.Name+" cannot be triggered through the API.")
		return
	}
	if len(req.DeviceUIDs) == 0 || len(req.DeviceUIDs) > maxRunDevices {
		writePortalError(w, http.StatusBadRequest, "INVALID_DEVICES", fmt.Sprintf("deviceUids must hold 1 to %d device UIDs.", maxRunDevices))
		return
	}
	timeout := defaultTimeoutSeconds
	if req.TimeoutSeconds != nil {
		timeout = *req.TimeoutSeconds
		if timeout < 1 || timeout > maxTimeoutSeconds {
			writePortalError(w, http.StatusBadRequest, "INVALID_TIMEOUT", fmt.Sprintf("timeoutSeconds must be between 1 and %d.", maxTimeoutSeconds))
			return
		}
	}
	for _, in := range action.Required {
		if strings.TrimSpace(req.Params[in]) == "" {
			writePortalError(w, http.StatusBadRequest, "MISSING_PARAMETER", "The parameter "+in+" is required.")
			return
		}
	}
	params := map[string]string{} // unknown parameter names are ignored
	for _, in := range action.Inputs {
		if v, ok := req.Params[in]; ok {
			params[in] = v
		}
	}
	targets := s.engines
	if len(req.EngineDatabaseUIDs) > 0 {
		targets = nil
		for _, uid := range req.EngineDatabaseUIDs {
			e := s.engineByUID(uid)
			if e == nil {
				writePortalError(w, http.StatusBadRequest, "UNKNOWN_ENGINE", "No engine with database UID "+uid+".")
				return
			}
			if !slices.Contains(targets, e) {
				targets = append(targets, e)
			}
		}
	}
	reqID := req.RequestUID
	if reqID == "" {
		reqID = s.actions.NewRequestID()
	}
	deadline := time.Duration(timeout) * time.Second
	resp := RunResponse{RequestUID: reqID, Engines: make([]EngineResponse, len(targets))}
	var wg sync.WaitGroup
	for k, e := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp.Engines[k] = s.dispatch(r, e, reqID, action.UUID, req.DeviceUIDs, params, deadline)
		}()
	}
	wg.Wait()
	if r.Context().Err() != nil {
		return
	}
	s.cfg.Logger.Info("remote action run", "request_id", reqID, "remote_action", action.ID, "devices", len(req.DeviceUIDs))
	writeJSON(w, http.StatusOK, resp)
}

// dispatch is the Portal's call to one Engine for a run.
func (s *Server) dispatch(r *http.Request, e *engine, reqID, actionUID string, uids []string, params map[string]string, timeout time.Duration) EngineResponse {
	out := EngineResponse{UID: e.uid, Name: e.name, DeviceUIDs: []string{}}
	f := e.getFaults()
	switch {
	case f.Down:
		out.Status = "UNAVAILABLE"
		return out
	case time.Duration(f.LatencyMS)*time.Millisecond > timeout:
		sleep(r.Context(), timeout)
		out.Status = "TIMEOUT"
		return out
	}
	if !sleep(r.Context(), time.Duration(f.LatencyMS)*time.Millisecond) {
		out.Status = "TIMEOUT"
		return out
	}
	if f.RefuseStatus != 0 {
		out.Status = "REFUSED"
		return out
	}
	var devices []int
	seen := map[int]bool{}
	for _, uid := range uids {
		i, ok := s.fleet.DeviceByCollectorUID(strings.TrimSpace(uid))
		if !ok || seen[i] || int(s.place.owner[i]) != e.index {
			continue
		}
		seen[i] = true
		devices = append(devices, i)
		out.DeviceUIDs = append(out.DeviceUIDs, s.fleet.Device(i).CollectorUID)
	}
	out.Status = "OK"
	if len(devices) > 0 {
		s.actions.Submit(reqID, actionUID, devices, params, timeout)
	}
	return out
}

func (s *Server) engineByUID(uid string) *engine {
	for _, e := range s.engines {
		if strings.EqualFold(e.uid, uid) {
			return e
		}
	}
	return nil
}
