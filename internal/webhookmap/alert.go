package webhookmap

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dexbridge/dexbridge/internal/locale"
)

// Status is an alert's state.
type Status string

// The two states an alert can report.
const (
	Open   Status = "open"
	Closed Status = "closed"
)

// Alert is a webhook payload read through its source's rules.
type Alert struct {
	Monitor      string
	Status       Status
	Device       string // device name, "" when the payload names none
	User         string // user name or UPN, "" when the payload names none
	TriggerTime  *time.Time
	RecoveryTime *time.Time
	// Context is alert.context: a JSON value when the payload carries one (or a
	// string holding a JSON object), else the text.
	Context  any
	Priority string
	// Rule is the monitor's rule; nil when the source has none for this monitor.
	Rule *Monitor
}

// Invalid is a payload that cannot be mapped; retrying will not help.
type Invalid struct {
	Field  string // the rule's field (monitor, status, ...) or "" for the whole payload
	Path   string // where the source's payload holds it ("" for the whole payload)
	Reason string
}

func (e *Invalid) Error() string {
	if e.Field == "" {
		return "payload: " + e.Reason
	}
	return "payload field " + e.Field + ": " + e.Reason
}

// maxValue bounds each extracted text value.
const maxValue = 1024

// Map reads an alert out of a payload (a JSON object).
func (s *Source) Map(payload []byte) (Alert, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return Alert{}, &Invalid{Reason: "not a JSON object"}
	}
	if dec.More() {
		return Alert{}, &Invalid{Reason: "more than one JSON value"}
	}
	f := s.Fields
	var a Alert
	var err error
	if a.Monitor, err = text(obj, f.Monitor); err != nil {
		return Alert{}, &Invalid{Field: "monitor", Path: f.Monitor, Reason: fmt.Sprintf("at %q: %v", f.Monitor, err)}
	}
	if a.Monitor == "" {
		return Alert{}, &Invalid{Field: "monitor", Path: f.Monitor, Reason: fmt.Sprintf("no monitor name at %q", f.Monitor)}
	}
	a.Status = Open
	if f.Status != "" {
		st, err := text(obj, f.Status)
		if err != nil {
			return Alert{}, &Invalid{Field: "status", Path: f.Status, Reason: fmt.Sprintf("at %q: %v", f.Status, err)}
		}
		switch w := strings.ToLower(st); {
		case w == "" || s.open[w]:
		case s.closed[w]:
			a.Status = Closed
		default:
			return Alert{}, &Invalid{Field: "status", Path: f.Status, Reason: fmt.Sprintf("%q at %q is neither an open nor a closed status", clip(st, 64), f.Status)}
		}
	}
	for _, p := range []struct {
		name, path string
		into       *string
	}{{"device", f.Device, &a.Device}, {"user", f.User, &a.User}, {"priority", f.Priority, &a.Priority}} {
		if p.path == "" {
			continue
		}
		if *p.into, err = text(obj, p.path); err != nil {
			return Alert{}, &Invalid{Field: p.name, Path: p.path, Reason: fmt.Sprintf("at %q: %v", p.path, err)}
		}
	}
	if a.Device == "" && a.User == "" {
		var at []string
		for _, p := range []string{f.Device, f.User} {
			if p != "" {
				at = append(at, strconv.Quote(p))
			}
		}
		return Alert{}, &Invalid{Field: "device", Path: cmp.Or(f.Device, f.User),
			Reason: "names neither a device nor a user (at " + strings.Join(at, " or ") + ")"}
	}
	a.TriggerTime = s.timeAt(obj, f.TriggerTime)
	a.RecoveryTime = s.timeAt(obj, f.RecoveryTime)
	if f.Context != "" {
		a.Context = contextValue(lookup(obj, f.Context))
	}
	a.Rule = s.Monitor(a.Monitor)
	return a, nil
}

// lookup finds path in obj: as one key first ("alert.monitor.name"), then as a path
// into nested objects, trying every split of the dots.
func lookup(obj map[string]any, path string) any {
	if v, ok := obj[path]; ok {
		return v
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if inner, ok := obj[path[:i]].(map[string]any); ok {
			if v := lookup(inner, path[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

var errNotText = errors.New("want a string, number or boolean")

// text is the value at path as text ("" when absent or null).
func text(obj map[string]any, path string) (string, error) {
	switch v := lookup(obj, path).(type) {
	case nil:
		return "", nil
	case string:
		// PostgreSQL text holds no NUL.
		return clip(strings.TrimSpace(strings.ReplaceAll(v, "\x00", "")), maxValue), nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", errNotText
	}
}

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// timeLayouts are the forms a time may take: RFC 3339, and NQL's "2023-07-17 17:53:49"
// (in the source's zone).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// timeAt reads a time; an absent or unreadable one is nil (times are informative).
func (s *Source) timeAt(obj map[string]any, path string) *time.Time {
	if path == "" {
		return nil
	}
	var t time.Time
	switch v := lookup(obj, path).(type) {
	case string:
		v = strings.TrimSpace(v)
		for _, l := range timeLayouts {
			if p, err := time.ParseInLocation(l, v, s.Location); err == nil {
				t = p
				break
			}
		}
	case json.Number:
		f, err := v.Float64()
		if err != nil || f <= 0 || f > math.MaxInt64/1e6 {
			return nil
		}
		if f > 1e11 { // milliseconds
			t = time.UnixMilli(int64(f))
		} else {
			t = time.Unix(int64(f), 0)
		}
	}
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// contextValue keeps a JSON value, and reads a string holding a JSON object or array.
func contextValue(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
		var inner any
		if json.Unmarshal([]byte(s), &inner) == nil {
			return inner
		}
	}
	return clip(s, 4*maxValue)
}

// Vars are the values of a message's placeholders for an alert and its employee and
// device.
func (a Alert) Vars(user, userUPN, device string) map[string]string {
	return a.VarsIn(locale.Default, user, userUPN, device)
}

// absent are the words that stand in for an employee or device an alert does not
// name, by locale.
var absent = map[string]struct{ user, device string }{
	"en": {"there", "your device"},
	"de": {"zusammen", "Ihrem Gerät"},  // "Hallo zusammen", "auf Ihrem Gerät"
	"fr": {"à vous", "votre appareil"}, // "Bonjour à vous", "sur votre appareil"
}

// VarsIn is Vars for a message in loc (a supported locale): what stands in for an
// employee or device the alert does not name is said in loc.
func (a Alert) VarsIn(loc, user, userUPN, device string) map[string]string {
	topic := ""
	if a.Rule != nil {
		topic = a.Rule.Topic
	}
	ctx := ""
	switch c := a.Context.(type) {
	case nil:
	case string:
		ctx = c
	default:
		b, _ := json.Marshal(c)
		ctx = string(b)
	}
	trig := ""
	if a.TriggerTime != nil {
		trig = a.TriggerTime.Format(time.RFC3339)
	}
	words, ok := absent[loc]
	if !ok {
		words = absent[locale.Default]
	}
	if user == "" {
		user = words.user
	}
	if device == "" {
		device = cmp.Or(a.Device, words.device)
	}
	return map[string]string{
		"user": user, "user_upn": userUPN, "device": device, "monitor": a.Monitor, "topic": topic,
		"context": ctx, "priority": a.Priority, "trigger_time": trig,
	}
}
