package nxsim

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// Actions runs remote actions over a fleet for another emulator front end (the V6
// mode's Portal): nxsim's library of remote actions and the executor that moves
// executions through their states, as the Infinity mode's tenants have them.
type Actions struct {
	x   *executor
	lib []remoteAction
}

// ActionInfo describes a remote action of the library.
type ActionInfo struct {
	ID         string // NQL id with '#'
	UUID       string
	Name       string
	Inputs     []string
	Required   []string
	APIEnabled bool
	Windows    bool // has a Windows script
	MacOS      bool
}

// NewActions wires the library and an executor over f; Run moves executions.
func NewActions(f *fleet.Fleet, timing ExecutionTiming, clock func() time.Time, log *slog.Logger) *Actions {
	timing = timing.WithDefaults()
	if clock == nil {
		clock = time.Now
	}
	return &Actions{x: newExecutor(f, timing, clock, log), lib: library()}
}

// Run advances executions until ctx ends.
func (a *Actions) Run(ctx context.Context) { a.x.run(ctx) }

func (a *Actions) find(id string) *remoteAction {
	for k := range a.lib {
		r := &a.lib[k]
		if strings.EqualFold(r.UUID, id) || r.ID == id || r.ID == "#"+id {
			return r
		}
	}
	return nil
}

// Find returns the remote action with that UUID or NQL id.
func (a *Actions) Find(id string) (ActionInfo, bool) {
	r := a.find(id)
	if r == nil {
		return ActionInfo{}, false
	}
	info := ActionInfo{ID: r.ID, UUID: r.UUID, Name: r.Name, APIEnabled: r.Targeting.APIEnabled,
		Windows: r.ScriptInfo.HasScriptWindows, MacOS: r.ScriptInfo.HasScriptMacOs}
	for _, in := range r.ScriptInfo.Inputs {
		info.Inputs = append(info.Inputs, in.ID)
		if in.required {
			info.Required = append(info.Required, in.ID)
		}
	}
	return info, true
}

// Submit creates one execution per device of the remote action id (UUID or NQL
// id) under requestID (a new one when ""), and returns the request id; an
// execution whose device does not start it within expiresIn expires.
func (a *Actions) Submit(requestID, id string, devices []int, params map[string]string, expiresIn time.Duration) (string, bool) {
	r := a.find(id)
	if r == nil {
		return "", false
	}
	return a.x.submit(requestID, r, devices, params, expiresIn, triggerInfo{}), true
}

// NewRequestID returns a new request id (a random UUID), for a request that
// several Submit calls share.
func (a *Actions) NewRequestID() string { return newUUID() }

// Settings returns the execution knobs.
func (a *Actions) Settings() ExecutionSettings { return a.x.getSettings() }

// SetSettings replaces the execution knobs.
func (a *Actions) SetSettings(s ExecutionSettings) { a.x.setSettings(s) }
