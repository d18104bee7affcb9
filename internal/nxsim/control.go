package nxsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/dexbridge/dexbridge/internal/nql"
)

// controlError is the error body of the control API.
type controlError struct {
	Error  string `json:"error"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// decodeControl decodes a JSON control body strictly, answering 400 when bad.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{Error: "invalid body: " + err.Error()})
		return false
	}
	return true
}

// Info describes a tenant (GET /_nxsim/info).
type Info struct {
	Name            string       `json:"name"`
	BasePath        string       `json:"base_path"`
	Devices         int          `json:"devices"`
	Users           int          `json:"users"`
	DevicePrefix    string       `json:"device_prefix"`
	ScenarioDevices []string     `json:"scenario_devices"`
	TimeZone        string       `json:"time_zone"`
	Credentials     []Credential `json:"credentials"`
	Queries         []string     `json:"queries"`
	RemoteActions   []string     `json:"remote_actions"`
}

func (t *tenant) info() Info {
	ras := make([]string, len(t.library))
	for k, a := range t.library {
		ras[k] = a.ID
	}
	return Info{
		Name: t.name, BasePath: "/tenants/" + t.name, Devices: t.fleet.Size(), Users: t.fleet.Users(),
		DevicePrefix: t.cfg.Prefix, ScenarioDevices: t.fleet.ScenarioNames(), TimeZone: t.cfg.TimeZone,
		Credentials: t.cfg.Credentials, Queries: t.queries.ids(), RemoteActions: ras,
	}
}

func (t *tenant) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.info())
}

func (t *tenant) handleGetCounters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.counters.snapshot())
}

func (t *tenant) handleResetCounters(w http.ResponseWriter, _ *http.Request) {
	t.counters.reset()
	writeJSON(w, http.StatusOK, t.counters.snapshot())
}

func (t *tenant) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.faults.get())
}

func (t *tenant) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeControl(w, r, &f) {
		return
	}
	if err := f.validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{Error: err.Error()})
		return
	}
	t.faults.set(f)
	t.log.Info("faults set", "down", f.Down, "error_rate", f.ErrorRate, "rate_limit_rate", f.RateLimitRate)
	writeJSON(w, http.StatusOK, f)
}

func (t *tenant) handleGetExecSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.executor.getSettings())
}

func (t *tenant) handlePutExecSettings(w http.ResponseWriter, r *http.Request) {
	var s ExecutionSettings
	if !decodeControl(w, r, &s) {
		return
	}
	if s.PendingMS < 0 || s.RunningMS < 0 || s.ExpireAfterMS < 0 {
		writeJSON(w, http.StatusBadRequest, controlError{Error: "pending_ms, running_ms and expire_after_ms must not be negative"})
		return
	}
	t.executor.setSettings(s)
	writeJSON(w, http.StatusOK, s)
}

// executionView is the control API's view of an execution.
type executionView struct {
	RequestID     string         `json:"request_id"`
	Device        string         `json:"device"`
	RemoteAction  string         `json:"remote_action"`
	Status        string         `json:"status"`
	StatusDetails string         `json:"status_details"`
	Outputs       map[string]any `json:"outputs,omitempty"`
	Time          string         `json:"time"`
	// What the caller sent, for tests of the trigger (and audit) path.
	Inputs            map[string]string `json:"inputs,omitempty"`
	ExternalSource    string            `json:"external_source,omitempty"`
	ExternalReference string            `json:"external_reference,omitempty"`
	Reason            string            `json:"reason,omitempty"`
}

func (t *tenant) handleGetExecutions(w http.ResponseWriter, r *http.Request) {
	execs := t.fleet.ExecutionsOf(r.PathValue("requestId"))
	if len(execs) == 0 {
		writeJSON(w, http.StatusNotFound, controlError{Error: "no such request"})
		return
	}
	out := make([]executionView, len(execs))
	for k, e := range execs {
		out[k] = executionView{e.RequestID, t.fleet.Device(e.Device).Name, e.ActionID, e.Status,
			e.StatusDetails, e.Outputs, e.Time.UTC().Format(nqlTimeLayout), e.Inputs, e.ExternalSource, e.ExternalReference, e.Reason}
	}
	writeJSON(w, http.StatusOK, out)
}

func (t *tenant) handleGetExportSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, t.exports.getSettings())
}

func (t *tenant) handlePutExportSettings(w http.ResponseWriter, r *http.Request) {
	var s ExportSettings
	if !decodeControl(w, r, &s) {
		return
	}
	if s.DelayMS < 0 || s.RowLimit < 0 || s.FileBytesPerSecond < 0 {
		writeJSON(w, http.StatusBadRequest, controlError{Error: "delay_ms, row_limit and file_bytes_per_second must not be negative"})
		return
	}
	t.exports.setSettings(s)
	writeJSON(w, http.StatusOK, s)
}

// devicesOnline is the body of POST /_nxsim/devices/online.
type devicesOnline struct {
	Devices []string `json:"devices"` // device names
	Online  bool     `json:"online"`
}

func (t *tenant) handleDevicesOnline(w http.ResponseWriter, r *http.Request) {
	var req devicesOnline
	if !decodeControl(w, r, &req) {
		return
	}
	idx := make([]int, 0, len(req.Devices))
	for _, n := range req.Devices {
		i, ok := t.fleet.DeviceByName(n)
		if !ok {
			writeJSON(w, http.StatusNotFound, controlError{Error: fmt.Sprintf("no device %q", n)})
			return
		}
		idx = append(idx, i)
	}
	out := map[string]bool{}
	for k, i := range idx {
		t.fleet.SetOnline(i, req.Online)
		out[req.Devices[k]] = t.fleet.Online(i)
	}
	writeJSON(w, http.StatusOK, map[string]any{"online": out})
}

// addQuery is the body of POST /_nxsim/queries.
type addQuery struct {
	ID  string `json:"id"`
	NQL string `json:"nql"`
}

func (t *tenant) handleAddQuery(w http.ResponseWriter, r *http.Request) {
	var req addQuery
	if !decodeControl(w, r, &req) {
		return
	}
	q, err := compileQuery(req.ID, req.NQL, "control API", t.schema)
	if err != nil {
		ce := controlError{Error: err.Error()}
		var ne *nql.Error
		if errors.As(err, &ne) {
			ce.Line, ce.Column = ne.Line, ne.Column
		}
		writeJSON(w, http.StatusBadRequest, ce)
		return
	}
	t.queries.put(q)
	writeJSON(w, http.StatusCreated, map[string]string{"id": q.ID})
}

func (t *tenant) handleExpireTokens(w http.ResponseWriter, _ *http.Request) {
	t.tokens.expireAll()
	writeJSON(w, http.StatusOK, map[string]string{"status": "expired"})
}
