package webhookmap

import "github.com/dexbridge/dexbridge/events"

// Messages are the texts of an alert's events: one per assessment (see the events
// package's Assess constants), so that the employee is told what the event holds,
// and the recovery message.
type Messages struct {
	FixAvailable     Template // a ready remediation addressing the problem can run: offer it
	ProblemConfirmed Template // the problem is confirmed, nothing dexbridge can run fixes it
	NotChecked       Template // the device could not be checked
	Healthy          Template // the diagnosis found nothing wrong (sent only with notify_healthy)
	Reported         Template // the monitor has no topic: the alert as reported
	Recovery         Template
}

// For is the template of an assessment.
func (m Messages) For(assessment string) Template {
	switch assessment {
	case events.AssessFixAvailable:
		return m.FixAvailable
	case events.AssessProblemConfirmed:
		return m.ProblemConfirmed
	case events.AssessHealthy:
		return m.Healthy
	case events.AssessReported:
		return m.Reported
	}
	return m.NotChecked
}

// Or fills the texts m does not set from def.
func (m Messages) Or(def Messages) Messages {
	pick := func(t, d Template) Template {
		if t.Empty() {
			return d
		}
		return t
	}
	return Messages{
		FixAvailable: pick(m.FixAvailable, def.FixAvailable), ProblemConfirmed: pick(m.ProblemConfirmed, def.ProblemConfirmed),
		NotChecked: pick(m.NotChecked, def.NotChecked), Healthy: pick(m.Healthy, def.Healthy),
		Reported: pick(m.Reported, def.Reported), Recovery: pick(m.Recovery, def.Recovery),
	}
}

// BuiltinMessages are the texts of whatever the rules file does not set.
func BuiltinMessages() Messages {
	must := func(src string) Template {
		t, err := ParseTemplate(src)
		if err != nil {
			panic(err) // a constant below
		}
		return t
	}
	return Messages{
		FixAvailable: must("Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I checked the device and found: " +
			"{{findings}}. I can fix this for you now ({{fix}}): shall I?"),
		ProblemConfirmed: must("Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I checked the device and found: " +
			"{{findings}}. I cannot fix this from here; IT will follow up with you."),
		NotChecked: must("Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I could not check the device " +
			"right now; IT will follow up with you."),
		Healthy:  must("Hi {{user}}, Nexthink reported {{monitor}} on {{device}}, but I checked the device and found nothing wrong."),
		Reported: must("Hi {{user}}, Nexthink reported {{monitor}} on {{device}}."),
		Recovery: must("The problem on {{device}} ({{monitor}}) is solved."),
	}
}

// messagesDoc is the messages key of a source or monitor.
type messagesDoc struct {
	FixAvailable     string `yaml:"fix_available"`
	ProblemConfirmed string `yaml:"problem_confirmed"`
	NotChecked       string `yaml:"not_checked"`
	Healthy          string `yaml:"healthy"`
	Reported         string `yaml:"reported"`
	Recovery         string `yaml:"recovery"`
}

// parseMessages checks the texts of a source or monitor at key. message and
// recoveryMessage are the older keys of messages.fix_available and messages.recovery.
func parseMessages(key, message, recoveryMessage string, d messagesDoc, bad func(key, format string, args ...any)) Messages {
	var m Messages
	for _, f := range []struct {
		name, older string
		src, old    string
		into        *Template
	}{
		{"fix_available", "message", d.FixAvailable, message, &m.FixAvailable},
		{"problem_confirmed", "", d.ProblemConfirmed, "", &m.ProblemConfirmed},
		{"not_checked", "", d.NotChecked, "", &m.NotChecked},
		{"healthy", "", d.Healthy, "", &m.Healthy},
		{"reported", "", d.Reported, "", &m.Reported},
		{"recovery", "recovery_message", d.Recovery, recoveryMessage, &m.Recovery},
	} {
		at, src := key+".messages."+f.name, f.src
		if f.old != "" {
			if src != "" {
				bad(key+"."+f.older, "set messages.%s or %s (its older name), not both", f.name, f.older)
				continue
			}
			at, src = key+"."+f.older, f.old
		}
		t, err := ParseTemplate(src)
		if err != nil {
			bad(at, "%v", err)
			continue
		}
		*f.into = t
	}
	return m
}
