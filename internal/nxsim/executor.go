package nxsim

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// ExecutionSettings are the remote-action execution knobs of a tenant.
type ExecutionSettings struct {
	PendingMS int `json:"pending_ms"` // time in pending before an online device starts
	RunningMS int `json:"running_ms"` // time in in_progress
	// ExpireAfterMS, when > 0, replaces expiresInMinutes (so tests see "expired").
	ExpireAfterMS  int      `json:"expire_after_ms,omitempty"`
	FailDevices    []string `json:"fail_devices,omitempty"` // device names whose executions fail
	FailActions    []string `json:"fail_actions,omitempty"` // remote action ids that fail
	FailureDetails string   `json:"failure_details,omitempty"`
}

// maxRunningPerDevice: a collector runs at most two remote actions at once.
const maxRunningPerDevice = 2

// Status details.
const (
	detailsPending  = "Waiting for the device to pick up the execution"
	detailsRunning  = "Executing script"
	detailsWaiting  = "Waiting for the device to come online"
	detailsSuccess  = "Script executed successfully"
	detailsFailure  = "Script failed with exit code 1"
	detailsExpired  = "The device did not come online before the execution expired"
	detailsNotAvail = "Remote action not available on this platform"
)

// executor moves a tenant's executions through their states.
type executor struct {
	f     *fleet.Fleet
	clock func() time.Time
	log   *slog.Logger
	tick  time.Duration

	mu       sync.Mutex
	settings ExecutionSettings
	active   []*activeExec
}

type activeExec struct {
	h                         int
	device                    int
	deviceName, action        string
	status                    string
	created, started, expires time.Time
}

func newExecutor(f *fleet.Fleet, timing ExecutionTiming, clock func() time.Time, log *slog.Logger) *executor {
	return &executor{f: f, clock: clock, log: log, tick: timing.Tick, settings: ExecutionSettings{
		PendingMS: int(timing.Pending / time.Millisecond), RunningMS: int(timing.Running / time.Millisecond),
	}}
}

func (x *executor) getSettings() ExecutionSettings {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.settings
}

func (x *executor) setSettings(s ExecutionSettings) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.settings = s
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// submit creates one pending execution per device and returns the request id:
// reqID, or a new one when reqID is "". Executions not started within expiresIn
// expire.
func (x *executor) submit(reqID string, a *remoteAction, devices []int, params map[string]string, expiresIn time.Duration, ti triggerInfo) string {
	if reqID == "" {
		reqID = newUUID()
	}
	precise := x.clock()
	now := precise.Truncate(time.Second) // NQL times have second precision
	s := x.getSettings()
	expires := precise.Add(expiresIn)
	if s.ExpireAfterMS > 0 {
		expires = precise.Add(time.Duration(s.ExpireAfterMS) * time.Millisecond)
	}
	if params == nil {
		params = map[string]string{}
	}
	var added []*activeExec
	for _, i := range devices {
		d := x.f.Device(i)
		e := fleet.Execution{
			RequestID: reqID, Device: i, ActionID: a.ID, ActionName: a.Name, Purpose: purposeToken(a),
			Inputs: params, Status: fleet.StatusPending, StatusDetails: detailsPending, Time: now,
			Created: now, ExpiresAt: expires.Truncate(time.Second), ExternalSource: ti.ExternalSource, ExternalReference: ti.ExternalReference, Reason: ti.Reason,
		}
		platformOK := (d.Platform == "Windows" && a.ScriptInfo.HasScriptWindows) || (d.Platform == "macOS" && a.ScriptInfo.HasScriptMacOs)
		if !platformOK {
			e.Status, e.StatusDetails = fleet.StatusFailure, detailsNotAvail
		}
		h := x.f.AddExecution(e)
		if platformOK {
			added = append(added, &activeExec{h: h, device: i, deviceName: d.Name, action: a.ID,
				status: fleet.StatusPending, created: precise, expires: expires})
		}
	}
	x.mu.Lock()
	x.active = append(x.active, added...)
	x.mu.Unlock()
	return reqID
}

// run advances executions every tick until ctx ends.
func (x *executor) run(ctx context.Context) {
	t := time.NewTicker(x.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.step()
		}
	}
}

// step moves every active execution whose time has come.
func (x *executor) step() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.active) == 0 {
		return
	}
	now := x.clock()
	at := now.Truncate(time.Second)
	s := x.settings
	pending := time.Duration(s.PendingMS) * time.Millisecond
	running := time.Duration(s.RunningMS) * time.Millisecond
	busy := map[int]int{}
	for _, a := range x.active {
		if a.status == fleet.StatusInProgress {
			busy[a.device]++
		}
	}
	set := func(a *activeExec, status, details string) {
		a.status = status
		x.f.SetStatus(a.h, status, details, at)
	}
	kept := x.active[:0]
	for _, a := range x.active {
		switch a.status {
		case fleet.StatusPending, fleet.StatusWaitingForDevice:
			if !now.Before(a.expires) {
				set(a, fleet.StatusExpired, detailsExpired)
				break
			}
			if now.Sub(a.created) < pending {
				break
			}
			if !x.f.Online(a.device) {
				if a.status != fleet.StatusWaitingForDevice {
					set(a, fleet.StatusWaitingForDevice, detailsWaiting)
				}
				break
			}
			if busy[a.device] >= maxRunningPerDevice {
				break
			}
			busy[a.device]++
			a.started = now
			set(a, fleet.StatusInProgress, detailsRunning)
		case fleet.StatusInProgress:
			if now.Sub(a.started) < running {
				break
			}
			busy[a.device]--
			if slices.ContainsFunc(s.FailDevices, func(n string) bool { return strings.EqualFold(n, a.deviceName) }) ||
				slices.Contains(s.FailActions, a.action) {
				details := s.FailureDetails
				if details == "" {
					details = detailsFailure
				}
				set(a, fleet.StatusFailure, details)
			} else {
				set(a, fleet.StatusSuccess, detailsSuccess)
			}
			x.log.Info("remote action finished", "remote_action", a.action, "device", a.deviceName, "status", a.status)
		}
		if !fleet.Terminal(a.status) {
			kept = append(kept, a)
		}
	}
	clear(x.active[len(kept):])
	x.active = kept
}
