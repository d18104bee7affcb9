package webhookmap

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/locale"
	"github.com/dexbridge/dexbridge/internal/yamlnode"
)

// Messages are the texts of an alert's events: one per assessment (see the events
// package's Assess constants), so that the employee is told what the event holds,
// and the recovery message.
type Messages struct {
	FixAvailable     Text // a ready remediation addressing the problem can run: offer it
	ProblemConfirmed Text // the problem is confirmed, nothing dexbridge can run fixes it
	NotChecked       Text // the device could not be checked
	Healthy          Text // the diagnosis found nothing wrong (sent only with notify_healthy)
	Reported         Text // the monitor has no topic: the alert as reported
	Recovery         Text
}

// Text is one message: its English template (embedded, so that Render says it in
// English) and its translations by locale.
type Text struct {
	Template
	Translations map[string]Template
}

// In is the template in loc (a supported locale), the English one when the text is
// not translated into it.
func (t Text) In(loc string) Template {
	if tr, ok := t.Translations[loc]; ok && !tr.Empty() {
		return tr
	}
	return t.Template
}

// For is the text of an assessment.
func (m Messages) For(assessment string) Text {
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

// Or fills the texts m does not set from def. A text set here keeps its own
// translations: one it lacks is said in English, not in def's words, since def's
// text may say something else (check lists it).
func (m Messages) Or(def Messages) Messages {
	pick := func(t, d Text) Text {
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

// named are the texts of m with their keys, in file order.
func (m *Messages) named() []struct {
	key  string
	text *Text
} {
	return []struct {
		key  string
		text *Text
	}{
		{"fix_available", &m.FixAvailable}, {"problem_confirmed", &m.ProblemConfirmed}, {"not_checked", &m.NotChecked},
		{"healthy", &m.Healthy}, {"reported", &m.Reported}, {"recovery", &m.Recovery},
	}
}

// Missing lists the keys of the texts of m (set in English) that have no
// translation into loc: messages.<loc>.<key>.
func (m Messages) Missing(loc string) []string {
	var out []string
	for _, n := range m.named() {
		if !n.text.Empty() && n.text.In(loc) == n.text.Template {
			out = append(out, "messages."+loc+"."+n.key)
		}
	}
	return out
}

// builtin are the texts of whatever the rules file does not set, by locale.
var builtin = map[string]messageTexts{
	"en": {
		FixAvailable: "Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I checked the device and found: " +
			"{{findings}}. I can fix this for you now ({{fix}}): shall I?",
		ProblemConfirmed: "Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I checked the device and found: " +
			"{{findings}}. I cannot fix this from here; IT will follow up with you.",
		NotChecked: "Hi {{user}}, Nexthink reported {{monitor}} on {{device}}. I could not check the device " +
			"right now; IT will follow up with you.",
		Healthy:  "Hi {{user}}, Nexthink reported {{monitor}} on {{device}}, but I checked the device and found nothing wrong.",
		Reported: "Hi {{user}}, Nexthink reported {{monitor}} on {{device}}.",
		Recovery: "The problem on {{device}} ({{monitor}}) is solved.",
	},
	"de": {
		FixAvailable: "Hallo {{user}}, Nexthink hat „{{monitor}}“ auf {{device}} gemeldet. Ich habe das Gerät geprüft und " +
			"Folgendes festgestellt: {{findings}}. Ich kann das jetzt für Sie beheben ({{fix}}). Soll ich?",
		ProblemConfirmed: "Hallo {{user}}, Nexthink hat „{{monitor}}“ auf {{device}} gemeldet. Ich habe das Gerät geprüft und " +
			"Folgendes festgestellt: {{findings}}. Von hier aus kann ich das nicht beheben; die IT meldet sich bei Ihnen.",
		NotChecked: "Hallo {{user}}, Nexthink hat „{{monitor}}“ auf {{device}} gemeldet. Ich konnte das Gerät gerade nicht " +
			"prüfen; die IT meldet sich bei Ihnen.",
		Healthy:  "Hallo {{user}}, Nexthink hat „{{monitor}}“ auf {{device}} gemeldet, aber ich habe das Gerät geprüft und kein Problem gefunden.",
		Reported: "Hallo {{user}}, Nexthink hat „{{monitor}}“ auf {{device}} gemeldet.",
		Recovery: "Das Problem auf {{device}} ({{monitor}}) ist behoben.",
	},
	"fr": {
		FixAvailable: "Bonjour {{user}}, Nexthink a signalé « {{monitor}} » sur {{device}}. J'ai vérifié l'appareil et constaté : " +
			"{{findings}}. Je peux corriger cela pour vous dès maintenant ({{fix}}) : voulez-vous que je le fasse ?",
		ProblemConfirmed: "Bonjour {{user}}, Nexthink a signalé « {{monitor}} » sur {{device}}. J'ai vérifié l'appareil et constaté : " +
			"{{findings}}. Je ne peux pas corriger cela d'ici ; le service informatique vous recontactera.",
		NotChecked: "Bonjour {{user}}, Nexthink a signalé « {{monitor}} » sur {{device}}. Je n'ai pas pu vérifier l'appareil " +
			"pour le moment ; le service informatique vous recontactera.",
		Healthy:  "Bonjour {{user}}, Nexthink a signalé « {{monitor}} » sur {{device}}, mais j'ai vérifié l'appareil et tout est en ordre.",
		Reported: "Bonjour {{user}}, Nexthink a signalé « {{monitor}} » sur {{device}}.",
		Recovery: "Le problème sur {{device}} ({{monitor}}) est résolu.",
	},
}

// BuiltinMessages are the texts of whatever the rules file does not set, in every
// supported locale.
func BuiltinMessages() Messages {
	var m Messages
	for _, loc := range locale.Supported() {
		texts := builtin[loc]
		for i, n := range m.named() {
			t, err := ParseTemplate(texts.list()[i])
			if err != nil {
				panic(fmt.Sprintf("built-in %s message %s: %v", loc, n.key, err)) // a constant above
			}
			if loc == locale.Default {
				n.text.Template = t
				continue
			}
			if n.text.Translations == nil {
				n.text.Translations = map[string]Template{}
			}
			n.text.Translations[loc] = t
		}
	}
	return m
}

// messageTexts are the messages of a source or monitor in one language.
type messageTexts struct {
	FixAvailable     string `yaml:"fix_available"`
	ProblemConfirmed string `yaml:"problem_confirmed"`
	NotChecked       string `yaml:"not_checked"`
	Healthy          string `yaml:"healthy"`
	Reported         string `yaml:"reported"`
	Recovery         string `yaml:"recovery"`
}

// list is the texts in the order of Messages.named.
func (d messageTexts) list() []string {
	return []string{d.FixAvailable, d.ProblemConfirmed, d.NotChecked, d.Healthy, d.Reported, d.Recovery}
}

// messagesDoc is the messages key of a source or monitor: the English texts, and
// under a locale key the same texts in that language.
type messagesDoc struct {
	messageTexts `yaml:",inline"`
	Locales      map[string]messageTexts `yaml:",inline"`
}

// parseMessages checks the texts of a source or monitor at key. message and
// recoveryMessage are the older keys of messages.fix_available and messages.recovery.
// lines gives the line of each locale key, to point at an unsupported one.
func parseMessages(key, message, recoveryMessage string, d messagesDoc, lines map[string]int, bad func(key, format string, args ...any)) Messages {
	var m Messages
	older := map[string]struct{ name, src string }{
		"fix_available": {"message", message}, "recovery": {"recovery_message", recoveryMessage},
	}
	for i, n := range m.named() {
		at, src := key+".messages."+n.key, d.list()[i]
		if o := older[n.key]; o.src != "" {
			if src != "" {
				bad(key+"."+o.name, "set messages.%s or %s (its older name), not both", n.key, o.name)
				continue
			}
			at, src = key+"."+o.name, o.src
		}
		t, err := ParseTemplate(src)
		if err != nil {
			bad(at, "%v", err)
			continue
		}
		n.text.Template = t
	}
	locs := make([]string, 0, len(d.Locales))
	for loc := range d.Locales {
		locs = append(locs, loc)
	}
	slices.Sort(locs)
	for _, loc := range locs {
		at := key + ".messages." + loc
		if err := locale.Check(loc); err != nil {
			if line := lines[loc]; line > 0 {
				at = fmt.Sprintf("line %d: %s", line, at)
			}
			bad(at, "%v", err)
			continue
		}
		for i, n := range m.named() {
			src := d.Locales[loc].list()[i]
			if src == "" {
				continue
			}
			if n.text.Empty() {
				bad(at+"."+n.key, "a translation of a text this level does not set: set messages.%s (English) too", n.key)
				continue
			}
			t, err := ParseTemplate(src)
			if err != nil {
				bad(at+"."+n.key, "%v", err)
				continue
			}
			if n.text.Translations == nil {
				n.text.Translations = map[string]Template{}
			}
			n.text.Translations[loc] = t
		}
	}
	return m
}

// messageLines is the line of each locale key of every messages mapping of a
// webhooks document, by the key of the source or monitor ("sources[0]",
// "sources[0].monitors[1]"), so that an unsupported locale is pointed at.
func messageLines(raw []byte) map[string]map[string]int {
	out := map[string]map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	known := map[string]bool{"fix_available": true, "problem_confirmed": true, "not_checked": true, "healthy": true, "reported": true, "recovery": true}
	lines := func(key string, owner *yaml.Node) {
		m := yamlnode.Value(owner, "messages")
		if m == nil || m.Kind != yaml.MappingNode {
			return
		}
		got := map[string]int{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i].Value; !known[k] {
				got[k] = m.Content[i].Line
			}
		}
		out[key] = got
	}
	sources := yamlnode.Value(doc.Content[0], "sources")
	if sources == nil {
		return out
	}
	for i, s := range sources.Content {
		key := fmt.Sprintf("sources[%d]", i)
		lines(key, s)
		if mons := yamlnode.Value(s, "monitors"); mons != nil {
			for j, mon := range mons.Content {
				lines(fmt.Sprintf("%s.monitors[%d]", key, j), mon)
			}
		}
	}
	return out
}
