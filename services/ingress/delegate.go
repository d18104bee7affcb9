package ingress

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/natsrpc"
	"github.com/dexbridge/dexbridge/internal/problem"
)

// A delegate key (scope delegate) acts for one employee: every request it makes is
// narrowed to that employee's devices. The checks below run in the handlers, after
// the request is validated and before anything is asked of a worker, so the REST API
// and the MCP tools (which go through these handlers) refuse alike.

// HeaderOnBehalfOf names, per request, the employee a delegate key acts for.
const HeaderOnBehalfOf = "Dexbridge-On-Behalf-Of"

func onBehalfOf(r *http.Request) string { return strings.TrimSpace(r.Header.Get(HeaderOnBehalfOf)) }

// delegateQuery is, for a delegate that names nobody to identify, its own employee:
// an agent acting for one person need not know their UPN to find their devices.
func delegateQuery(ctx context.Context, q url.Values) url.Values {
	if p := principalFrom(ctx); len(q) == 0 && p != nil && p.Delegated() {
		return url.Values{events.KeyUPN: {p.Employee}}
	}
	return q
}

// delegateIdentify lets a delegate identify its own employee only, by UPN.
func delegateIdentify(ctx context.Context, req events.DevicesIdentifyRequest) error {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return nil
	}
	if req.Key != events.KeyUPN || !strings.EqualFold(req.Value, p.Employee) {
		return problem.New(problem.DelegateForbidden, "this key acts for %s only: identify them with upn=%s", p.Employee, p.Employee)
	}
	return nil
}

// delegateDevice lets a delegate reach a device (a name or collector UID, on instance
// when given) only when it is one of its employee's. The device is resolved as the
// workers resolve it; a name several devices share is refused, since the one acted on
// could be someone else's, and an unknown device is refused like another person's,
// so that a delegate cannot probe which devices exist.
func (h *handlers) delegateDevice(ctx context.Context, device, instance string) error {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return nil
	}
	refused := problem.New(problem.DelegateForbidden, "this key acts for %s only, and %q is not one of their devices", p.Employee, device)
	var got events.DevicesGetReply
	req := events.DevicesGetRequest{Header: events.NewHeader(events.TypeDevicesGetRequest), Device: device, Instance: instance}
	if err := h.opts.RPC.Call(ctx, h.opts.Subjects.Of(events.DevicesGet), req, &got, natsrpc.Idempotent); err != nil {
		if problem.CodeOf(err) == problem.NotFound {
			return refused
		}
		return err
	}
	if len(got.OtherMatches) > 0 && !strings.EqualFold(device, got.Device.CollectorUID) {
		return problem.New(problem.DelegateForbidden, "several devices are named %q: give the collector UID of the employee's device", device)
	}
	return h.delegateOwns(ctx, got.Device.CollectorUID, got.Device.Instance, refused)
}

// delegateOwns checks that the device (collector UID on instance) is one of the
// delegate's employee's devices, as identification by their UPN finds them.
func (h *handlers) delegateOwns(ctx context.Context, uid, instance string, refused error) error {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return nil
	}
	if uid == "" {
		return refused
	}
	var mine events.DevicesIdentifyReply
	req := events.DevicesIdentifyRequest{Header: events.NewHeader(events.TypeDevicesIdentifyRequest), Key: events.KeyUPN, Value: p.Employee}
	if err := h.opts.RPC.Call(ctx, h.opts.Subjects.Of(events.DevicesIdentify), req, &mine, natsrpc.Idempotent); err != nil {
		if problem.CodeOf(err) == problem.NotFound {
			return refused
		}
		return err
	}
	for _, d := range mine.Devices {
		if strings.EqualFold(d.CollectorUID, uid) && (instance == "" || d.Instance == instance) {
			return nil
		}
	}
	return refused
}

// delegateExecution lets a delegate read an execution only on its employee's device.
func (h *handlers) delegateExecution(ctx context.Context, e events.Execution) error {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return nil
	}
	return h.delegateOwns(ctx, e.Device.CollectorUID, e.Device.Instance,
		problem.New(problem.DelegateForbidden, "this key acts for %s only, and execution %s is on another device", p.Employee, e.ID))
}

// delegateEvents keeps, for a delegate, the proactive events about its employee.
func delegateEvents(ctx context.Context, evs []events.ProactiveEvent) []events.ProactiveEvent {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return evs
	}
	out := make([]events.ProactiveEvent, 0, len(evs))
	for _, ev := range evs {
		if ev.Employee != nil && strings.EqualFold(ev.Employee.UPN, p.Employee) {
			out = append(out, ev)
		}
	}
	return out
}

// undelegated refuses delegate keys a route that is not about one employee's devices
// (saved NQL queries, the proactive stream and acknowledgements).
func (h *handlers) undelegated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := principalFrom(r.Context()); p != nil && p.Delegated() {
			h.fail(w, r, problem.New(problem.DelegateForbidden, "this key acts for %s only, and %s is not about one employee's devices", p.Employee, r.URL.Path))
			return
		}
		next(w, r)
	}
}

// delegateExecutions lets a delegate list the executions of one of its employee's
// devices only.
func (h *handlers) delegateExecutions(ctx context.Context, req events.ExecutionsListRequest) error {
	p := principalFrom(ctx)
	if p == nil || !p.Delegated() {
		return nil
	}
	if req.Device == "" {
		return problem.New(problem.DelegateForbidden, "this key acts for %s only: list executions with device= one of their devices", p.Employee)
	}
	return h.delegateDevice(ctx, req.Device, "")
}
