package webhooks

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/locale"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
)

// Target is one employee on one device that an alert concerns. Either may be
// missing: an alert about a device nobody used recently has no employee.
type Target struct {
	Employee *Employee
	Device   *Device
	// Unresolved says why nobody can be told of the alert ("" when someone can): the
	// device or user it names is not in the cache, or nobody used the device recently.
	// Such an event is recorded for operators and never sent.
	Unresolved string
}

// Targets decides who hears of an alert, from what the payload names and what the
// cache knows: the named user on the named device; for a device alone, its most
// recent users (up to maxUsers); for a user alone, the user on their most recently
// active device. A device or user the cache does not know cannot be checked nor
// trusted to reach the right person: its target is unresolved.
func Targets(a webhookmap.Alert, maxUsers int, dev *Device, devUsers []Employee, emp *Employee, empDevices []Device) []Target {
	named := func() *Employee {
		if a.User == "" {
			return nil
		}
		e := &Employee{Name: a.User}
		if strings.Contains(a.User, "@") {
			e.UPN = a.User
		}
		return e
	}
	switch {
	case a.Device != "" && dev == nil:
		return []Target{{Employee: named(), Device: &Device{Name: a.Device},
			Unresolved: "device " + a.Device + " is not in the cache"}}
	case a.Device == "" && emp == nil:
		return []Target{{Employee: named(), Unresolved: "user " + a.User + " is not in the cache"}}
	case a.User != "":
		if emp == nil {
			emp = named()
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
		return []Target{{Device: dev, Unresolved: "nobody used device " + dev.Name + " recently"}}
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
	if t.Device != nil {
		return "device:" + in + strings.ToLower(t.Device.Name)
	}
	return "nobody:"
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

// Checked is a device's diagnosis before its event is recorded: the diagnosis, or
// why it could not run.
type Checked struct {
	Diagnosis *events.Diagnosis
	Error     string
}

// OpenEvents builds the events an open alert asks for, one per target. checked holds
// each device's diagnosis (by name), when one ran; runs says whether a remediation
// can run on a platform; topics (nil: none) give the titles of the topic's rules and
// remediations in each locale. Each event's texts are rendered in every supported
// locale, so that each reader gets its own.
func OpenEvents(src *webhookmap.Source, a webhookmap.Alert, targets []Target, checked map[string]Checked, runs Runnable, topics *topic.Catalog) []store.NewProactiveEvent {
	rule := a.Rule
	alert := alertJSON(a)
	out := make([]store.NewProactiveEvent, 0, len(targets))
	for _, t := range targets {
		e := store.NewProactiveEvent{
			ID: newEventID(), Topic: rule.Topic, SubjectKey: t.subjectKey(), Alert: alert,
			SuppressionWindow: src.SuppressionWindow(rule),
		}
		user, upn, device, platform := "", "", "", ""
		if t.Employee != nil {
			e.UserName, e.UserUPN = t.Employee.Name, t.Employee.UPN
			user, upn = t.Employee.Name, t.Employee.UPN
		}
		if t.Device != nil {
			e.DeviceName, e.CollectorUID, e.Instance, e.Platform = t.Device.Name, t.Device.CollectorUID, t.Device.Instance, t.Device.Platform
			device, platform = t.Device.Name, t.Device.Platform
		}
		var c *Checked
		if t.Device != nil {
			if got, ok := checked[t.Device.Name]; ok {
				c = &got
			}
		}
		as := Assess(rule, platform, c, runs)
		switch {
		case t.Unresolved != "":
			e.Hold, e.Detail = store.ProactiveUnresolved, t.Unresolved
		case as.Kind == events.AssessHealthy && !rule.NotifyHealthy:
			e.Hold, e.Detail = store.ProactiveHealthy, as.Why+"; not sent (notify_healthy is off for this monitor)"
		default:
			e.Detail = as.Why
		}
		if c != nil {
			e.Diagnosis, _ = json.Marshal(as.Diagnosis)
		}
		e.Assessment = as.Kind
		e.Remediations, _ = json.Marshal(as.Remediations)
		texts := openTexts(a, as, topicOf(topics, rule.Topic), user, upn, device)
		e.Message = texts[locale.Default].Message
		e.Texts, _ = json.Marshal(texts)
		out = append(out, e)
	}
	return out
}

// CloseEvents is what a recovery alert closes: the open events of its monitor on its
// device (or, without a device, of its user). The recovery time is the payload's, else
// when the webhook arrived.
func CloseEvents(a webhookmap.Alert, received time.Time) *store.CloseProactive {
	at := received.UTC()
	if a.RecoveryTime != nil {
		at = *a.RecoveryTime
	}
	closing := map[string]string{}
	for _, loc := range locale.Supported() {
		closing[loc] = a.Rule.Messages.Recovery.In(loc).Render(a.VarsIn(loc, a.User, "", a.Device))
	}
	return &store.CloseProactive{
		DeviceName: a.Device, UserName: a.User, RecoveryTime: at,
		CloseMessage: closing[locale.Default], CloseMessages: closing,
	}
}

// topicOf is the topic of an alert's monitor, nil when unknown.
func topicOf(c *topic.Catalog, id string) *topic.Topic {
	if c == nil || id == "" {
		return nil
	}
	t, _ := c.Get(id)
	return t
}

// openTexts are an event's texts in every supported locale: the message chosen by
// its assessment, with the problems found and the fixes offered named in that
// locale, and the titles of the diagnosis's rules and remediations. Without the
// topic (t nil), titles stay as the diagnosis gave them.
func openTexts(a webhookmap.Alert, as Assessment, t *topic.Topic, user, upn, device string) map[string]events.ProactiveTexts {
	rule := func(loc, id, english string) string {
		if t == nil {
			return english
		}
		return t.RuleTitleIn(loc, id, english)
	}
	remedy := func(loc string, r events.SuggestedRemedy) events.RemedyText {
		if t == nil {
			return events.RemedyText{Title: r.Title, Message: r.Message}
		}
		title, message := t.RemediationIn(loc, r.ID, r.Title, r.Message)
		return events.RemedyText{Title: title, Message: message}
	}
	out := map[string]events.ProactiveTexts{}
	for _, loc := range locale.Supported() {
		tx := events.ProactiveTexts{}
		findings := make([]string, len(as.Findings))
		for i, title := range as.Findings {
			findings[i] = rule(loc, as.FindingRules[i], title)
		}
		fixes := make([]string, len(as.Fixes))
		for i, title := range as.Fixes {
			fixes[i] = remedy(loc, events.SuggestedRemedy{ID: as.FixIDs[i], Title: title}).Title
		}
		vars := a.VarsIn(loc, user, upn, device)
		vars["findings"], vars["fix"] = strings.Join(findings, "; "), strings.Join(fixes, ", ")
		tx.Message = a.Rule.Messages.For(as.Kind).In(loc).Render(vars)
		if d := as.Diagnosis; d != nil && loc != locale.Default {
			tx.Rules = map[string]string{}
			for _, r := range d.Rules {
				tx.Rules[r.Rule] = rule(loc, r.Rule, r.Title)
			}
			for _, f := range d.Findings {
				tx.Rules[f.Rule] = rule(loc, f.Rule, f.Title)
			}
			tx.Remediations = map[string]events.RemedyText{}
			for _, r := range append(slices.Clone(d.Remediations), as.Remediations...) {
				tx.Remediations[r.ID] = remedy(loc, r)
			}
		}
		out[loc] = tx
	}
	return out
}
