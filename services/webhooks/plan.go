package webhooks

import (
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// Target is one employee on one device that an alert concerns. Either may be
// missing: an alert about a device nobody used recently has no employee.
type Target struct {
	Employee *Employee
	Device   *Device
}

// Targets decides who hears of an alert, from what the payload names and what the
// cache knows: the named user on the named device; for a device alone, its most
// recent users (up to maxUsers); for a user alone, the user on their most recently
// active device. Names the cache does not know are kept as the payload gives them.
func Targets(a webhookmap.Alert, maxUsers int, dev *Device, devUsers []Employee, emp *Employee, empDevices []Device) []Target {
	if a.Device != "" && dev == nil {
		dev = &Device{Name: a.Device}
	}
	switch {
	case a.User != "":
		if emp == nil {
			emp = &Employee{Name: a.User}
			if strings.Contains(a.User, "@") {
				emp.UPN = a.User
			}
			// The device's users may know the user's UPN or name.
			for _, u := range devUsers {
				if strings.EqualFold(u.Name, a.User) || strings.EqualFold(u.UPN, a.User) {
					emp = &u
					break
				}
			}
		}
		if dev == nil && len(empDevices) > 0 {
			dev = &empDevices[0]
		}
		return []Target{{Employee: emp, Device: dev}}
	case len(devUsers) == 0:
		return []Target{{Device: dev}}
	default:
		out := make([]Target, 0, min(maxUsers, len(devUsers)))
		for i := range devUsers {
			if len(out) == max(maxUsers, 1) {
				break
			}
			out = append(out, Target{Employee: &devUsers[i], Device: dev})
		}
		return out
	}
}

// subjectKey is whom suppression counts pings for: the employee, else the device,
// of the device's instance (tenants share user and device names).
func (t Target) subjectKey() string {
	in := ""
	if t.Device != nil && t.Device.Instance != "" {
		in = t.Device.Instance + ":"
	}
	if t.Employee != nil {
		return "user:" + in + strings.ToLower(t.Employee.Name)
	}
	return "device:" + in + strings.ToLower(t.Device.Name)
}

// newEventID is a fresh proactive event id.
func newEventID() string {
	u := uuid.New()
	return "pe_" + hex.EncodeToString(u[:])
}

// alertJSON is the alert as events carry it.
func alertJSON(a webhookmap.Alert) []byte {
	b, _ := json.Marshal(events.ProactiveAlert{Status: string(a.Status), TriggerTime: a.TriggerTime,
		RecoveryTime: a.RecoveryTime, Context: a.Context, Priority: a.Priority})
	return b
}

// hintRemediations are the remediations the monitor's rule names, described from the
// topic when the catalogue is known.
func hintRemediations(rule *webhookmap.Monitor, cat *topic.Catalog) []events.ProactiveRemediation {
	var out []events.ProactiveRemediation
	for _, id := range rule.Remediations {
		r := events.ProactiveRemediation{ID: id}
		if cat != nil {
			if t, ok := cat.Get(rule.Topic); ok {
				if tr, ok := t.Remediation(id); ok {
					r.Title, r.RemoteAction, r.Message = tr.Title, tr.RemoteAction, strings.TrimSpace(tr.Message)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// OpenEvents builds the events an open alert asks for, one per target. diagnoses
// holds the diagnosis of each device (by name), when one ran.
func OpenEvents(src *webhookmap.Source, a webhookmap.Alert, targets []Target, diagnoses map[string]*events.ProactiveDiagnosis,
	cat *topic.Catalog) []store.NewProactiveEvent {
	rule := a.Rule
	alert := alertJSON(a)
	hints := hintRemediations(rule, cat)
	out := make([]store.NewProactiveEvent, 0, len(targets))
	for _, t := range targets {
		e := store.NewProactiveEvent{
			ID: newEventID(), Topic: rule.Topic, SubjectKey: t.subjectKey(), Alert: alert,
			Unresolved: t.Employee == nil, SuppressionWindow: src.SuppressionWindow(rule),
		}
		user, upn, device := "", "", ""
		if t.Employee != nil {
			e.UserName, e.UserUPN = t.Employee.Name, t.Employee.UPN
			user, upn = t.Employee.Name, t.Employee.UPN
		}
		if t.Device != nil {
			e.DeviceName, e.CollectorUID, e.Instance, e.Platform = t.Device.Name, t.Device.CollectorUID, t.Device.Instance, t.Device.Platform
			device = t.Device.Name
		}
		rems := hints
		if t.Device != nil {
			if d := diagnoses[t.Device.Name]; d != nil {
				e.Diagnosis, _ = json.Marshal(d)
				if d.Error == "" {
					rems = d.Remediations
				}
			}
		}
		if rems == nil {
			rems = []events.ProactiveRemediation{}
		}
		e.Remediations, _ = json.Marshal(rems)
		e.Message = rule.Message.Render(a.Vars(user, upn, device))
		out = append(out, e)
	}
	return out
}

// CloseEvents is what a recovery alert closes: the open events of its monitor on its
// device (or, without a device, of its user).
func CloseEvents(a webhookmap.Alert) *store.CloseProactive {
	return &store.CloseProactive{
		DeviceName: a.Device, UserName: a.User,
		CloseMessage: a.Rule.RecoveryMessage.Render(a.Vars(a.User, "", a.Device)),
	}
}
