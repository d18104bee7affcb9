package remoteactions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/cursor"
	"github.com/dexbridge/dexbridge/internal/nexthink"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Store is what the manager records in and reads from (store.DB).
type Store interface {
	IdempotentExecution(ctx context.Context, apiKeyID, key string) (store.IdempotencyKey, error)
	ReserveExecution(ctx context.Context, e store.Execution, a store.AuditRecord, key *store.IdempotencyKey, dedupe bool) (store.Reservation, error)
	MarkTriggered(ctx context.Context, id, requestID string, expiresAt time.Time, auditID int64) (store.Execution, error)
	FailTrigger(ctx context.Context, id, details string, auditID int64, code, detail string) (store.Execution, error)
	ReleaseExecution(ctx context.Context, id string, auditID int64, code, detail string) error
	RecordAudit(ctx context.Context, a store.AuditRecord) (int64, error)
	Execution(ctx context.Context, id string) (store.Execution, error)
	DevicesByKey(ctx context.Context, key store.DeviceKey, value string, limit int) ([]store.CachedDevice, error)
	LatestDiagnosis(ctx context.Context, topic, collectorUID, instance string, since time.Time) (store.Diagnosis, error)
	ListExecutions(ctx context.Context, f store.ExecutionFilter) ([]store.Execution, error)
	SigningKey(ctx context.Context, purpose string) ([]byte, error)
}

// Upstream is one instance's Remote Actions API (nexthink.Client).
type Upstream interface {
	Trigger(ctx context.Context, req nexthink.TriggerRequest) (*nexthink.TriggerResponse, error)
	RemoteAction(ctx context.Context, nqlID string) (*nexthink.RemoteAction, error)
}

// LiveIdentify finds a device the cache does not know, on the instances themselves
// (livedevices.Finder).
type LiveIdentify func(ctx context.Context, key, value string) ([]events.Device, error)

// Caller is who asked, from the request's NATS headers.
type Caller struct {
	APIKeyID      string
	HTTPRequestID string
}

// manager is the remote action manager's logic, without NATS.
type manager struct {
	store    Store
	upstream map[string]Upstream // by instance
	allow    atomic.Pointer[allowlist.List]
	topics   atomic.Pointer[topic.Catalog]
	live     LiveIdentify // nil: the cache only
	details  *detailsCache
	cursors  *cursor.Keys
	js       jetstream.JetStream // nil: changes are not published
	subjects events.Subjects
	log      *slog.Logger
	now      func() time.Time

	onlineWithin    time.Duration // how recently a device must have been seen to count as online
	expiresIn       time.Duration // expiresInMinutes of every trigger
	diagnosisMaxAge time.Duration // how recent the diagnosis of a topic remediation must be
	triggerTimeout  time.Duration // bounds the call to Nexthink, whoever waits for it
	replayWait      time.Duration // how long a replay waits for a concurrent trigger of its key
}

// detailsTimeout bounds the wait for a remote action's details.
const detailsTimeout = 3 * time.Second

// ExternalSource is triggerInfo.externalSource of every trigger.
const ExternalSource = "dexbridge"

// defaultReason is triggerInfo.reason when the caller gives none.
const defaultReason = "triggered through dexbridge"

// triggerHash is what a trigger's Idempotency-Key protects.
type triggerHash struct {
	RemoteAction      string            `json:"remote_action"`
	Device            string            `json:"device"`
	Params            map[string]string `json:"params"`
	Reason            string            `json:"reason"`
	ExternalReference string            `json:"external_reference"`
	Topic             string            `json:"topic"`
	Remediation       string            `json:"remediation"`
	Force             bool              `json:"force,omitempty"`
}

// remediateHash is what a topic remediation's Idempotency-Key protects: the request,
// not the params the diagnosis gave (a retry after a new diagnosis is the same request).
type remediateHash struct {
	Topic       string `json:"topic"`
	Remediation string `json:"remediation"`
	Device      string `json:"device"`
	Reason      string `json:"reason"`
	Force       bool   `json:"force,omitempty"`
}

// job is one trigger on its way through the checks.
type job struct {
	caller      Caller
	key         string // Idempotency-Key, "" for none
	hash        string
	audit       store.AuditRecord
	audited     bool
	action      *allowlist.RemoteAction
	device      device
	params      map[string]string
	reason      string
	externalRef string
	topic       string
	remediation string
	force       bool // no dedupe against an active execution of the same fix
}

// device is a resolved device.
type device struct {
	name, collectorUID, instance, platform string
	lastSeen                               *time.Time
}

// result is a trigger's answer.
type result struct {
	execution store.Execution
	replayed  bool
	existing  bool
	// resolved is true when the device was resolved for the answer, lastSeen then
	// being what resolution found.
	resolved bool
	lastSeen *time.Time
}

// answer is the execution of r as the contract carries it, with its device's
// last_seen and presence now: as resolution found them, else the later of the
// cache's and the one known at the trigger. A device the cache does not hold (or
// cannot tell of now) has no presence.
func (m *manager) answer(ctx context.Context, r result) events.Execution {
	e := wire.Execution(r.execution)
	seen, known := r.lastSeen, r.resolved
	if !known && e.Device.CollectorUID != "" {
		found, err := m.store.DevicesByKey(ctx, store.ByCollectorUID, e.Device.CollectorUID, 10)
		if err != nil {
			m.log.WarnContext(ctx, "device presence unavailable", "execution_id", e.ID, "err", err)
		}
		for _, d := range found {
			if d.Instance == e.Device.Instance {
				seen, known = d.LastSeen, true
				if later(r.execution.DeviceLastSeen, seen) {
					seen = r.execution.DeviceLastSeen
				}
			}
		}
	}
	if known {
		e.Device.LastSeen = wire.UTC(seen)
		e.Device.Presence = events.PresenceAt(seen, m.now(), m.onlineWithin)
	}
	return e
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ex_" + hex.EncodeToString(b[:])
}

// list answers the allow-list.
func (m *manager) list() events.ActionsListReply {
	reply := events.ActionsListReply{Header: events.NewHeader(events.TypeActionsListReply), Actions: []events.RemoteAction{}}
	for _, a := range m.allow.Load().List() {
		ra := events.RemoteAction{ID: a.ID, Title: a.Title, Description: a.Description, Purpose: string(a.Purpose),
			Platforms: slices.Clone(a.Platforms), Inputs: []events.ActionInput{}}
		if ra.Platforms == nil {
			ra.Platforms = []string{}
		}
		for _, in := range a.Inputs {
			ra.Inputs = append(ra.Inputs, events.ActionInput{Name: in.Name, Required: in.Required, Description: in.Description})
		}
		reply.Actions = append(reply.Actions, ra)
	}
	return reply
}

// get answers one execution.
func (m *manager) get(ctx context.Context, id string) (store.Execution, error) {
	if !events.ValidExecutionID(id) {
		return store.Execution{}, problem.New(problem.NotFound, "no execution %q", id)
	}
	e, err := m.store.Execution(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Execution{}, problem.New(problem.NotFound, "no execution %q", id)
	case err != nil:
		return store.Execution{}, problem.Wrap(problem.ServiceUnavailable, err, "executions cannot be read right now").Retry(time.Second)
	}
	return e, nil
}

// trigger runs a remote action on a device.
func (m *manager) trigger(ctx context.Context, c Caller, req events.ActionsTriggerRequest) (result, error) {
	j := &job{caller: c, key: req.IdempotencyKey, params: req.Params, reason: req.Reason, externalRef: req.ExternalReference,
		topic: req.Topic, remediation: req.Remediation, force: req.Force,
		audit: store.AuditRecord{APIKeyID: c.APIKeyID, HTTPRequestID: c.HTTPRequestID, RemoteAction: req.RemoteAction,
			Device: req.Device, Params: req.Params, Reason: req.Reason, ExternalReference: req.ExternalReference,
			Topic: req.Topic, Remediation: req.Remediation, IdempotencyKey: req.IdempotencyKey}}
	res, err := m.run(ctx, j, func() error {
		if err := req.Validate(); err != nil {
			return err
		}
		j.hash = requestHash("trigger", triggerHash{RemoteAction: req.RemoteAction, Device: req.Device, Params: req.Params,
			Reason: req.Reason, ExternalReference: req.ExternalReference, Topic: req.Topic, Remediation: req.Remediation, Force: req.Force})
		return nil
	}, func(ctx context.Context) error {
		a, ok := m.allow.Load().Get(req.RemoteAction)
		if !ok {
			return problem.New(problem.Forbidden, "remote action %s is not in dexbridge's allow-list (GET /api/v1/remote-actions lists those it may run)", req.RemoteAction)
		}
		j.action = a
		d, err := m.resolve(ctx, req.Device)
		j.device = d
		return err
	})
	return res, err
}

// remediate runs a topic's remediation on a device with the params of the latest
// diagnosis of that topic on that device.
func (m *manager) remediate(ctx context.Context, c Caller, req events.ActionsRemediateRequest) (result, error) {
	j := &job{caller: c, key: req.IdempotencyKey, reason: req.Reason, topic: req.Topic, remediation: req.Remediation, force: req.Force,
		audit: store.AuditRecord{APIKeyID: c.APIKeyID, HTTPRequestID: c.HTTPRequestID, Device: req.Device, Reason: req.Reason,
			Topic: req.Topic, Remediation: req.Remediation, IdempotencyKey: req.IdempotencyKey}}
	var rem *topic.Remediation
	return m.run(ctx, j, func() error {
		if err := req.Validate(); err != nil {
			return err
		}
		t, ok := m.topics.Load().Get(req.Topic)
		if !ok {
			return problem.New(problem.NotFound, "no topic %q", req.Topic)
		}
		if rem, ok = t.Remediation(req.Remediation); !ok {
			return problem.New(problem.NotFound, "topic %s has no remediation %q", req.Topic, req.Remediation)
		}
		j.audit.RemoteAction = rem.RemoteAction
		if rem.RemoteAction == "" {
			return problem.New(problem.Unprocessable, "remediation %s of topic %s is a message for the employee, not a remote action: show it, there is nothing to run", req.Remediation, req.Topic)
		}
		j.hash = requestHash("remediate", remediateHash{Topic: req.Topic, Remediation: req.Remediation, Device: req.Device, Reason: req.Reason, Force: req.Force})
		if j.reason == "" {
			j.reason = fmt.Sprintf("dexbridge: %s remediation %s", req.Topic, req.Remediation)
		}
		return nil
	}, func(ctx context.Context) error {
		a, ok := m.allow.Load().Get(rem.RemoteAction)
		if !ok {
			return problem.New(problem.Forbidden, "remote action %s of remediation %s is not in dexbridge's allow-list", rem.RemoteAction, req.Remediation)
		}
		j.action = a
		d, err := m.resolve(ctx, req.Device)
		if err != nil {
			return err
		}
		j.device = d
		j.params, err = m.diagnosedParams(ctx, req, rem, d)
		j.audit.Params = j.params
		return err
	})
}

// diagnosedParams are the params of remediation rem from the latest diagnosis of
// its topic on the device. Without a recent diagnosis the chatbot is asked to
// diagnose first (409): running one here would hide its findings from the
// conversation, and a diagnosis with refresh takes longer than a chatbot waits.
func (m *manager) diagnosedParams(ctx context.Context, req events.ActionsRemediateRequest, rem *topic.Remediation, d device) (map[string]string, error) {
	since := m.now().Add(-m.diagnosisMaxAge)
	stored, err := m.store.LatestDiagnosis(ctx, req.Topic, d.collectorUID, d.instance, since)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, problem.New(problem.Conflict, "no diagnosis of topic %s on %s in the last %s: diagnose first (POST /api/v1/topics/%s/diagnosis), then remediate",
			req.Topic, d.name, m.diagnosisMaxAge, req.Topic)
	case err != nil:
		return nil, problem.Wrap(problem.ServiceUnavailable, err, "diagnoses cannot be read right now").Retry(time.Second)
	}
	var diag events.Diagnosis
	if err := json.Unmarshal(stored.Body, &diag); err != nil {
		return nil, problem.Wrap(problem.Internal, err, "the latest diagnosis cannot be read")
	}
	for _, s := range diag.Remediations {
		if s.ID != req.Remediation {
			continue
		}
		if !s.Ready {
			return nil, problem.New(problem.Conflict, "the latest diagnosis of %s on %s (%s) does not offer %s as ready: %s; diagnose again once that has changed",
				req.Topic, d.name, stored.ID, req.Remediation, s.NotReady)
		}
		return s.Params, nil
	}
	if len(rem.Params) > 0 {
		return nil, problem.New(problem.Conflict, "the latest diagnosis of %s on %s (%s) does not suggest %s, so it holds no params for it: its problem was not found",
			req.Topic, d.name, stored.ID, req.Remediation)
	}
	return nil, nil
}

// run takes a job through its steps: check (no I/O), the Idempotency-Key, prepare
// (allow-list, device, params), the remote action's declared inputs and platforms,
// the reservation, the trigger. Every outcome is audited once.
func (m *manager) run(ctx context.Context, j *job, check func() error, prepare func(context.Context) error) (res result, err error) {
	defer func() {
		if err != nil && !j.audited {
			p := problem.From(err)
			outcome := store.AuditRefused
			if p.Code == problem.Internal || p.Code == problem.ServiceUnavailable {
				outcome = store.AuditFailed
			}
			m.recordAudit(ctx, j, outcome, p)
		}
	}()
	if err := check(); err != nil {
		return result{}, err
	}
	if j.key != "" {
		bound, err := m.store.IdempotentExecution(ctx, j.caller.APIKeyID, j.key)
		switch {
		case err == nil:
			return m.replay(ctx, j, bound)
		case !errors.Is(err, store.ErrNotFound):
			return result{}, problem.Wrap(problem.ServiceUnavailable, err, "idempotency keys cannot be read right now").Retry(time.Second)
		}
	}
	if err := prepare(ctx); err != nil {
		return result{}, err
	}
	j.audit.RemoteAction, j.audit.CollectorUID, j.audit.Instance = j.action.ID, j.device.collectorUID, j.device.instance
	up := m.upstream[j.device.instance]
	s, err := m.spec(ctx, j, up)
	if err != nil {
		return result{}, err
	}
	if err := checkPlatform(j.action.ID, s, j.device.platform); err != nil {
		return result{}, err
	}
	if err := checkInputs(j.action.ID, s, j.params); err != nil {
		return result{}, err
	}
	return m.fire(ctx, j, up)
}

// spec is what the remote action accepts on the device's instance: the tenant's
// details, or the allow-list's declaration when the tenant cannot tell now.
func (m *manager) spec(ctx context.Context, j *job, up Upstream) (spec, error) {
	// The details only sharpen the check: they may not eat the caller's time.
	dctx, cancel := context.WithTimeout(ctx, detailsTimeout)
	defer cancel()
	d, err := m.details.get(dctx, j.device.instance, j.action.ID, up)
	if err == nil {
		if !d.Targeting.APIEnabled {
			return spec{}, problem.New(problem.Unprocessable, "remote action %s is not enabled for API triggers on instance %s", j.action.ID, j.device.instance)
		}
		return specOf(j.action, d), nil
	}
	if p := nexthink.Problem(err); p.Code == problem.NotFound {
		return spec{}, problem.New(problem.NotFound, "instance %s has no remote action %s", j.device.instance, j.action.ID)
	}
	m.log.WarnContext(ctx, "remote action details unavailable: checking params against the allow-list",
		"instance", j.device.instance, "remote_action", j.action.ID, "err", err)
	return specOf(j.action, nil), nil
}

// fire reserves the execution (binding the Idempotency-Key), calls the Remote Actions
// API and records its answer. The call and what follows are detached from the
// caller: once the request is sent, its outcome is recorded even if the caller gave up.
func (m *manager) fire(ctx context.Context, j *job, up Upstream) (result, error) {
	now := m.now().UTC().Truncate(time.Microsecond)
	e := store.Execution{ID: newID(), RemoteAction: j.action.ID, Instance: j.device.instance, CollectorUID: j.device.collectorUID,
		DeviceName: j.device.name, Params: j.params, Reason: j.reason, ExternalReference: j.externalRef,
		APIKeyID: j.caller.APIKeyID, Topic: j.topic, Remediation: j.remediation, CreatedAt: now, ExpiresAt: now.Add(m.expiresIn),
		DeviceLastSeen: j.device.lastSeen}
	if e.ExternalReference == "" {
		e.ExternalReference = j.caller.HTTPRequestID
	}
	reason := j.reason
	if reason == "" {
		reason = defaultReason
	}
	var key *store.IdempotencyKey
	if j.key != "" {
		key = &store.IdempotencyKey{APIKeyID: j.caller.APIKeyID, Key: j.key, RequestHash: j.hash}
	}
	var auditID int64
	for attempt := 1; ; attempt++ {
		res, err := m.store.ReserveExecution(ctx, e, j.audit, key, !j.force)
		if err != nil {
			return result{}, problem.Wrap(problem.ServiceUnavailable, err, "executions cannot be recorded right now").Retry(time.Second)
		}
		if res.Active != nil {
			r, err := m.existing(ctx, j, *res.Active)
			if errors.Is(err, errReleased) {
				if attempt < maxReserveAttempts {
					continue // Nexthink refused the other trigger: this one may go
				}
				return result{}, problem.New(problem.ServiceUnavailable, "the same remote action on %s was refused by Nexthink %d times in a row: retry in a moment",
					j.device.name, attempt).Retry(time.Second)
			}
			return r, err
		}
		if !res.Reserved {
			return m.replay(ctx, j, res.Bound)
		}
		auditID = res.AuditID
		break
	}
	j.audited = true
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.triggerTimeout)
	defer cancel()
	resp, err := up.Trigger(dctx, nexthink.TriggerRequest{RemoteActionID: e.RemoteAction, Devices: []string{e.CollectorUID},
		Params: j.params, ExpiresInMinutes: int(m.expiresIn / time.Minute),
		TriggerInfo: &nexthink.TriggerInfo{ExternalSource: ExternalSource, Reason: reason, ExternalReference: e.ExternalReference}})
	if err != nil {
		return m.failed(dctx, j, e, auditID, err)
	}
	expires := now.Add(time.Duration(resp.ExpiresInMinutes) * time.Minute)
	if resp.ExpiresInMinutes <= 0 {
		expires = e.ExpiresAt
	}
	done, err := m.store.MarkTriggered(dctx, e.ID, resp.RequestID, expires, auditID)
	if err != nil {
		// The action runs, but dexbridge could not record it: say so with its request id,
		// so an operator can follow it in Nexthink. The service logs the failure.
		return result{}, problem.Wrap(problem.Internal, err, fmt.Sprintf("remote action %s was triggered (Nexthink request %s) but dexbridge could not record it", e.RemoteAction, resp.RequestID))
	}
	m.log.InfoContext(ctx, "remote action triggered", "execution_id", e.ID, "request_id", resp.RequestID,
		"remote_action", e.RemoteAction, "instance", e.Instance, "device", e.DeviceName)
	m.publish(dctx, done)
	return result{execution: done, resolved: true, lastSeen: j.device.lastSeen}, nil
}

// failed records a trigger the Remote Actions API did not accept. When it certainly
// did not run, the reservation goes (a retry may trigger afresh); otherwise the
// execution ends in failure and keeps its key, so a retry cannot run it twice.
func (m *manager) failed(ctx context.Context, j *job, e store.Execution, auditID int64, err error) (result, error) {
	p := nexthink.Problem(err)
	var ne *nexthink.Error
	if errors.As(err, &ne) && ne.NotRun() {
		if rerr := m.store.ReleaseExecution(ctx, e.ID, auditID, string(p.Code), p.Detail); rerr != nil {
			m.log.ErrorContext(ctx, "releasing a refused execution failed", "execution_id", e.ID, "err", rerr)
		}
		m.log.WarnContext(ctx, "remote action trigger refused", "remote_action", e.RemoteAction, "instance", e.Instance, "err", err)
		return result{}, p
	}
	details := "the trigger's outcome is unknown (" + p.Detail + "): the action may run; check Nexthink before running it again"
	failed, ferr := m.store.FailTrigger(ctx, e.ID, details, auditID, string(p.Code), p.Detail)
	if ferr != nil {
		m.log.ErrorContext(ctx, "recording a failed trigger failed", "execution_id", e.ID, "err", ferr)
	} else {
		m.publish(ctx, failed)
	}
	m.log.WarnContext(ctx, "remote action trigger failed, outcome unknown", "execution_id", e.ID, "remote_action", e.RemoteAction,
		"instance", e.Instance, "err", err)
	out := *p
	out.Detail = fmt.Sprintf("%s; execution %s records it: its outcome is unknown, do not retry it blindly", p.Detail, e.ID)
	return result{}, &out
}

// replay answers a request whose Idempotency-Key is bound: the same execution when it
// asks for the same thing (once its trigger has been answered), 422 when it asks for
// something else.
func (m *manager) replay(ctx context.Context, j *job, bound store.IdempotencyKey) (result, error) {
	if bound.RequestHash != j.hash {
		return result{}, problem.New(problem.Unprocessable, "Idempotency-Key %q was used for a different request: use a new key for a new request", j.key)
	}
	e, err := m.triggered(ctx, bound.ExecutionID, func() error {
		return problem.New(problem.Conflict, "a request with Idempotency-Key %q is still being triggered: retry in a moment", j.key).Retry(time.Second)
	})
	if err != nil {
		return result{}, readProblem(err)
	}
	j.audit.RemoteAction, j.audit.CollectorUID, j.audit.Instance = e.RemoteAction, e.CollectorUID, e.Instance
	j.audit.ExecutionID = e.ID
	m.recordAudit(ctx, j, store.AuditReplayed, nil)
	return result{execution: e, replayed: true}, nil
}

// maxReserveAttempts bounds the reservations of one trigger that found an active
// execution of the same fix whose own trigger Nexthink then refused.
const maxReserveAttempts = 3

// errReleased says that the active execution a trigger was answered with has gone:
// Nexthink refused its trigger, so it never ran.
var errReleased = errors.New("the active execution was released")

// existing answers a trigger with active, the execution of the same remote action
// with the same params already active on the device, once its own trigger has been
// answered. The caller forces a second one with force.
func (m *manager) existing(ctx context.Context, j *job, active store.Execution) (result, error) {
	e, err := m.triggered(ctx, active.ID, func() error {
		return problem.New(problem.Conflict, "execution %s of %s on %s is being triggered: retry in a moment", active.ID, active.RemoteAction, active.DeviceName).Retry(time.Second)
	})
	if errors.Is(err, store.ErrNotFound) {
		return result{}, errReleased
	}
	if err != nil {
		return result{}, readProblem(err)
	}
	j.audit.ExecutionID = e.ID
	m.recordAudit(ctx, j, store.AuditExisting, nil)
	m.log.InfoContext(ctx, "trigger answered with the active execution of the same fix", "execution_id", e.ID,
		"remote_action", e.RemoteAction, "instance", e.Instance, "device", e.DeviceName)
	return result{execution: e, existing: true}, nil
}

// triggered reads execution id until its trigger has been answered (it is no longer
// triggering), for at most m.replayWait, then answers busy(). A store error is
// returned as it is.
func (m *manager) triggered(ctx context.Context, id string, busy func() error) (store.Execution, error) {
	deadline := m.now().Add(m.replayWait)
	for {
		e, err := m.store.Execution(ctx, id)
		if err != nil || e.Status != store.ExecTriggering {
			return e, err
		}
		if m.now().After(deadline) {
			return store.Execution{}, busy()
		}
		select {
		case <-ctx.Done():
			return store.Execution{}, problem.Wrap(problem.Timeout, ctx.Err(), "the first trigger of this execution is still in flight")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readProblem is the answer to an execution that cannot be read.
func readProblem(err error) error {
	var p *problem.Error
	if errors.As(err, &p) {
		return p
	}
	return problem.Wrap(problem.ServiceUnavailable, err, "executions cannot be read right now").Retry(time.Second)
}

func (m *manager) recordAudit(ctx context.Context, j *job, outcome string, p *problem.Error) {
	a := j.audit
	a.Outcome = outcome
	if p != nil {
		a.Code, a.Detail = string(p.Code), p.Detail
	}
	if a.RemoteAction == "" {
		a.RemoteAction = "(none)"
	}
	if _, err := m.store.RecordAudit(context.WithoutCancel(ctx), a); err != nil {
		m.log.ErrorContext(ctx, "recording an audit record failed", "outcome", outcome, "err", err)
	}
	j.audited = true
}

// resolve finds a device by name or collector UID: in the cache, then live. A name
// known on several instances is the most recently seen one.
func (m *manager) resolve(ctx context.Context, name string) (device, error) {
	key, idKey := store.ByDeviceName, events.KeyDeviceName
	if events.IsCollectorUID(name) {
		key, idKey = store.ByCollectorUID, events.KeyCollectorUID
	}
	found, err := m.store.DevicesByKey(ctx, key, name, 10)
	if err != nil {
		return device{}, problem.Wrap(problem.ServiceUnavailable, err, "the cache cannot be read right now").Retry(time.Second)
	}
	var best *store.CachedDevice
	for i := range found {
		if _, ok := m.upstream[found[i].Instance]; !ok {
			continue
		}
		if best == nil || later(found[i].LastSeen, best.LastSeen) {
			best = &found[i]
		}
	}
	if best != nil {
		d := device{name: best.Name, collectorUID: best.CollectorUID, instance: best.Instance, platform: best.Platform, lastSeen: best.LastSeen}
		if m.live != nil && m.wentQuiet(best.LastSeen, best.RefreshedAt) {
			d.lastSeen = m.seenLive(ctx, d)
		}
		return d, nil
	}
	if m.live != nil {
		devs, err := m.live(ctx, idKey, name)
		if err != nil {
			return device{}, err
		}
		for _, d := range devs {
			if _, ok := m.upstream[d.Instance]; ok && d.CollectorUID != "" {
				return device{name: d.Name, collectorUID: strings.ToLower(d.CollectorUID), instance: d.Instance, platform: d.Platform, lastSeen: d.LastSeen}, nil
			}
		}
	}
	return device{}, problem.New(problem.NotFound, "no device %q on any configured instance", name)
}

// wentQuiet reports whether the cache read a device online (at readAt) that it would
// call offline now: only because the cache has not read it since. A device
// reporting all along looks so between two discoveries when the discovery period is
// near presence.online_within; calling it offline would end a wait for a fix at once.
func (m *manager) wentQuiet(lastSeen *time.Time, readAt time.Time) bool {
	return lastSeen != nil && m.now().Sub(*lastSeen) > m.onlineWithin && readAt.Sub(*lastSeen) <= m.onlineWithin
}

// seenLive is when the device's instance last heard from it, asked now, else (the
// instance failing) the cache's time.
func (m *manager) seenLive(ctx context.Context, d device) *time.Time {
	devs, err := m.live(ctx, events.KeyCollectorUID, d.collectorUID)
	if err != nil {
		m.log.WarnContext(ctx, "the device's last_seen not asked live: the cache's stands", "device", d.name, "err", err)
		return d.lastSeen
	}
	seen := d.lastSeen
	for _, x := range devs {
		if x.Instance == d.instance && later(x.LastSeen, seen) {
			seen = x.LastSeen
		}
	}
	return seen
}

func later(a, b *time.Time) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	}
	return a.After(*b)
}

// publish announces execution changes on the EXECUTIONS stream. The database is
// authoritative: a change not published is logged, and a waiting request reads the
// execution again when its wait ends.
func (m *manager) publish(ctx context.Context, execs ...store.Execution) {
	if _, err := events.PublishExecutionUpdates(ctx, m.js, m.subjects, wire.ExecutionUpdates(execs...)...); err != nil {
		m.log.WarnContext(ctx, "execution changes not published", "err", err)
	}
}
