// Package webhookmap holds the webhook mapping rules (config/webhooks.yaml, checked
// against schemas/config/webhooks.json): which senders may post webhooks and with
// which credentials, how a sender's payload maps to an alert, which topic an alert's
// monitor triggers, and the message the employee gets. Mapping a payload is a pure
// function of the rules and the bytes, so it is unit-tested and fuzzed without NATS
// or HTTP.
package webhookmap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/signature"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// ReservedSourceName cannot name a source: its path lists the webhooks received.
const ReservedSourceName = "deliveries"

// Defaults of the optional settings.
const (
	DefaultSuppressionWindow = 4 * time.Hour
	DefaultTolerance         = 5 * time.Minute
	DefaultDeliveryIDHeader  = "Idempotency-Key"
)

// The status words a payload may use when a source does not list its own.
var (
	defaultOpen   = []string{"open", "opened", "trigger", "triggered", "firing"}
	defaultClosed = []string{"closed", "close", "recovery", "recovered", "resolved"}
)

// Rules is one loaded webhooks file, immutable: a reload builds new Rules.
type Rules struct {
	File              string
	SuppressionWindow time.Duration
	sources           []*Source
}

// Source is a sender of webhooks.
type Source struct {
	Name        string
	Description string
	// Instance is the Nexthink instance whose people and devices the source's alerts
	// concern; "" for any (allowed only with one instance configured: CheckInstances).
	Instance string
	Auth     Auth
	// Signature is set when the source must sign its requests.
	Signature        *Signature
	DeliveryIDHeader string
	Fields           Fields
	Location         *time.Location
	// MaxUsersPerDevice bounds who is told of an alert that names only a device.
	MaxUsersPerDevice int
	// Messages are the source's texts, for monitors that set none (built-in ones fill
	// what the source does not set).
	Messages Messages
	// Disabled says why the source is refused (a secret is missing); "" when enabled.
	Disabled string

	open, closed      map[string]bool
	monitors          map[string]*Monitor
	order             []*Monitor // the monitors in file order
	own               Messages   // the texts the source sets itself
	suppressionWindow time.Duration
}

// Auth is how a source authenticates: Basic, Bearer, or only its signature.
type Auth struct {
	Type     string // basic, bearer or none
	Username string
	Password config.Secret
	Token    config.Secret
}

// Signature is a source's HMAC-SHA256 signing (package signature).
type Signature struct {
	Header    string
	Tolerance time.Duration
	Secret    config.Secret
}

// Fields says where each value is in a source's payload.
type Fields struct {
	Monitor      string `yaml:"monitor"`
	Status       string `yaml:"status"`
	Device       string `yaml:"device"`
	User         string `yaml:"user"`
	TriggerTime  string `yaml:"trigger_time"`
	RecoveryTime string `yaml:"recovery_time"`
	Context      string `yaml:"context"`
	Priority     string `yaml:"priority"`
}

// Monitor is what an alert of one monitor does.
type Monitor struct {
	Name  string
	Topic string
	// Rules are the rules of the topic the alert is about: its verdict and the
	// problems it reports are read from these only. Empty: every rule.
	Rules []string
	// Remediations are those of the topic's remediations the alert may offer.
	// Empty: any the diagnosis suggests.
	Remediations []string
	// NotifyHealthy sends the event even when the diagnosis found nothing wrong;
	// by default such an event is recorded and not sent.
	NotifyHealthy bool
	// Messages fall back to the source's, then to the built-in ones.
	Messages          Messages
	SuppressionWindow time.Duration

	own Messages // the texts the monitor sets itself
}

// Concerns reports whether the alert is about a rule of its topic.
func (m *Monitor) Concerns(rule string) bool {
	return len(m.Rules) == 0 || slices.Contains(m.Rules, rule)
}

// Offers reports whether the alert may offer a remediation of its topic.
func (m *Monitor) Offers(remediation string) bool {
	return len(m.Remediations) == 0 || slices.Contains(m.Remediations, remediation)
}

// MissingTranslations lists, in file order, the keys of the texts the file sets
// that have no translation into loc (sources[0].monitors[1].messages.de.recovery):
// they are said in English. Built-in texts are translated into every supported
// locale.
func (r *Rules) MissingTranslations(loc string) []string {
	var out []string
	for i, s := range r.sources {
		key := fmt.Sprintf("sources[%d].", i)
		out = append(out, prefixed(key, s.own.Missing(loc))...)
		for j, m := range s.order {
			out = append(out, prefixed(fmt.Sprintf("%smonitors[%d].", key, j), m.own.Missing(loc))...)
		}
	}
	return out
}

func prefixed(prefix string, keys []string) []string {
	for i := range keys {
		keys[i] = prefix + keys[i]
	}
	return keys
}

// Sources lists the sources in file order.
func (r *Rules) Sources() []*Source { return r.sources }

// Source finds a source by name.
func (r *Rules) Source(name string) (*Source, bool) {
	for _, s := range r.sources {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Monitor finds the rule of a monitor (case-insensitive); nil when none.
func (s *Source) Monitor(name string) *Monitor {
	return s.monitors[monitorKey(name)]
}

// SuppressionWindow is the window of a monitor of this source.
func (s *Source) SuppressionWindow(m *Monitor) time.Duration {
	if m != nil && m.SuppressionWindow > 0 {
		return m.SuppressionWindow
	}
	return s.suppressionWindow
}

func monitorKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// The file's shape; the schema has checked keys and types before this decodes it.
type document struct {
	SuppressionWindow config.Duration `yaml:"suppression_window"`
	Sources           []sourceDoc     `yaml:"sources"`
}

type sourceDoc struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Instance    string `yaml:"instance"`
	Auth        struct {
		Type     string `yaml:"type"`
		Username string `yaml:"username"`
	} `yaml:"auth"`
	Signature *struct {
		Header    string          `yaml:"header"`
		Tolerance config.Duration `yaml:"tolerance"`
	} `yaml:"signature"`
	CredentialsFile  string `yaml:"credentials_file"`
	DeliveryIDHeader string `yaml:"delivery_id_header"`
	Fields           Fields `yaml:"fields"`
	StatusValues     struct {
		Open   []string `yaml:"open"`
		Closed []string `yaml:"closed"`
	} `yaml:"status_values"`
	TimeZone          string       `yaml:"time_zone"`
	MaxUsersPerDevice int          `yaml:"max_users_per_device"`
	Message           string       `yaml:"message"`
	RecoveryMessage   string       `yaml:"recovery_message"`
	Messages          messagesDoc  `yaml:"messages"`
	Monitors          []monitorDoc `yaml:"monitors"`
}

type monitorDoc struct {
	Name              string          `yaml:"name"`
	Topic             string          `yaml:"topic"`
	Rules             []string        `yaml:"rules"`
	Remediations      []string        `yaml:"remediations"`
	NotifyHealthy     bool            `yaml:"notify_healthy"`
	Message           string          `yaml:"message"`
	RecoveryMessage   string          `yaml:"recovery_message"`
	Messages          messagesDoc     `yaml:"messages"`
	SuppressionWindow config.Duration `yaml:"suppression_window"`
}

// Load reads and checks the file at path; getenv supplies the sources' secrets. Every
// problem found is reported, each line prefixed with the file and naming the key.
func Load(path string, getenv func(string) string) (*Rules, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	r, err := Parse(raw, getenv)
	if err != nil {
		return nil, prefixFile(path, err)
	}
	r.File = path
	return r, nil
}

// Parse decodes and checks a webhooks document.
func Parse(raw []byte, getenv func(string) string) (*Rules, error) {
	var d document
	if err := config.DecodeStrict(raw, "config/webhooks.json", &d); err != nil {
		return nil, err
	}
	r := &Rules{SuppressionWindow: d.SuppressionWindow.D()}
	if r.SuppressionWindow <= 0 {
		r.SuppressionWindow = DefaultSuppressionWindow
	}
	lines := messageLines(raw)
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	for i, sd := range d.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if sd.Name == ReservedSourceName {
			bad(key+".name", "%q is reserved: GET /api/v1/webhooks/%s lists the webhooks received", sd.Name, sd.Name)
			continue
		}
		if _, dup := r.Source(sd.Name); dup {
			bad(key+".name", "duplicate source %q", sd.Name)
			continue
		}
		s := &Source{
			Name: sd.Name, Description: sd.Description, Instance: sd.Instance,
			Auth:              Auth{Type: sd.Auth.Type, Username: sd.Auth.Username},
			DeliveryIDHeader:  sd.DeliveryIDHeader,
			Fields:            sd.Fields,
			MaxUsersPerDevice: sd.MaxUsersPerDevice,
			monitors:          map[string]*Monitor{},
			suppressionWindow: r.SuppressionWindow,
		}
		if s.DeliveryIDHeader == "" {
			s.DeliveryIDHeader = DefaultDeliveryIDHeader
		}
		if s.MaxUsersPerDevice == 0 {
			s.MaxUsersPerDevice = 1
		}
		switch s.Auth.Type {
		case "basic":
			if s.Auth.Username == "" {
				bad(key+".auth.username", "required with basic authentication")
			}
		case "bearer", "none":
			if s.Auth.Username != "" {
				bad(key+".auth.username", "only basic authentication has a user name")
			}
		}
		if sd.Signature != nil {
			s.Signature = &Signature{Header: sd.Signature.Header, Tolerance: sd.Signature.Tolerance.D()}
			if s.Signature.Header == "" {
				s.Signature.Header = signature.Header
			}
			if s.Signature.Tolerance <= 0 {
				s.Signature.Tolerance = DefaultTolerance
			}
		} else if s.Auth.Type == "none" {
			bad(key+".auth.type", "none needs a signature: a source must authenticate somehow")
		}
		if s.Fields.Device == "" && s.Fields.User == "" {
			bad(key+".fields", "map device or user (or both): an alert must concern someone")
		}
		s.open = words(sd.StatusValues.Open, defaultOpen)
		s.closed = words(sd.StatusValues.Closed, defaultClosed)
		for w := range s.open {
			if s.closed[w] {
				bad(key+".status_values", "%q is both an open and a closed value", w)
			}
		}
		s.Location = time.UTC
		if sd.TimeZone != "" {
			loc, err := time.LoadLocation(sd.TimeZone)
			if err != nil {
				bad(key+".time_zone", "unknown time zone %q", sd.TimeZone)
			} else {
				s.Location = loc
			}
		}
		s.own = parseMessages(key, sd.Message, sd.RecoveryMessage, sd.Messages, lines[key], bad)
		s.Messages = s.own.Or(BuiltinMessages())
		for j, md := range sd.Monitors {
			mkey := fmt.Sprintf("%s.monitors[%d]", key, j)
			if _, dup := s.monitors[monitorKey(md.Name)]; dup {
				bad(mkey+".name", "duplicate monitor %q", md.Name)
				continue
			}
			m := &Monitor{Name: strings.TrimSpace(md.Name), Topic: md.Topic, Rules: md.Rules, Remediations: md.Remediations,
				NotifyHealthy: md.NotifyHealthy, SuppressionWindow: md.SuppressionWindow.D()}
			if len(m.Remediations) > 0 && m.Topic == "" {
				bad(mkey+".remediations", "remediations belong to a topic: set topic")
			}
			if len(m.Rules) > 0 && m.Topic == "" {
				bad(mkey+".rules", "rules belong to a topic: set topic")
			}
			m.own = parseMessages(mkey, md.Message, md.RecoveryMessage, md.Messages, lines[mkey], bad)
			m.Messages = m.own.Or(s.Messages)
			s.monitors[monitorKey(md.Name)] = m
			s.order = append(s.order, m)
		}
		if err := loadSecrets(s, sd.CredentialsFile, getenv); err != nil {
			bad(key+".credentials_file", "%v", err)
		}
		r.sources = append(r.sources, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func words(list, def []string) map[string]bool {
	if len(list) == 0 {
		list = def
	}
	out := make(map[string]bool, len(list))
	for _, w := range list {
		out[strings.ToLower(strings.TrimSpace(w))] = true
	}
	return out
}

// SecretEnv is the variable holding a source's secret part (PASSWORD, TOKEN or
// SIGNING_SECRET): WEBHOOK_NEXTHINK_PASSWORD for the source nexthink.
func SecretEnv(source, part string) string {
	var b strings.Builder
	b.WriteString("WEBHOOK_")
	for _, r := range strings.ToUpper(source) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteString("_" + part)
	return b.String()
}

// loadSecrets fills a source's secrets from its variables, else its file, and
// disables the source when one it needs is missing.
func loadSecrets(s *Source, file string, getenv func(string) string) error {
	var f struct {
		Password      string `yaml:"password"`
		Token         string `yaml:"token"`
		SigningSecret string `yaml:"signing_secret"`
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("want password, token and/or signing_secret: %w", err)
		}
	}
	pick := func(part, fromFile string) config.Secret {
		if v := getenv(SecretEnv(s.Name, part)); v != "" {
			return config.Secret(v)
		}
		return config.Secret(fromFile)
	}
	var missing []string
	switch s.Auth.Type {
	case "basic":
		if s.Auth.Password = pick("PASSWORD", f.Password); s.Auth.Password == "" {
			missing = append(missing, SecretEnv(s.Name, "PASSWORD"))
		}
	case "bearer":
		if s.Auth.Token = pick("TOKEN", f.Token); s.Auth.Token == "" {
			missing = append(missing, SecretEnv(s.Name, "TOKEN"))
		}
	}
	if s.Signature != nil {
		if s.Signature.Secret = pick("SIGNING_SECRET", f.SigningSecret); s.Signature.Secret == "" {
			missing = append(missing, SecretEnv(s.Name, "SIGNING_SECRET"))
		}
	}
	if len(missing) > 0 {
		s.Disabled = fmt.Sprintf("no secret: set %s or credentials_file", strings.Join(missing, " and "))
	}
	return nil
}

// CheckTopics checks that every monitor's topic exists in cat and that its
// remediations are the topic's.
func (r *Rules) CheckTopics(cat *topic.Catalog) error {
	var errs []error
	for i, s := range r.sources {
		names := make([]string, 0, len(s.monitors))
		for k := range s.monitors {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			m := s.monitors[k]
			if m.Topic == "" {
				continue
			}
			key := fmt.Sprintf("sources[%d] monitor %q", i, m.Name)
			t, ok := cat.Get(m.Topic)
			if !ok {
				errs = append(errs, &config.Error{Key: key + " topic", Reason: fmt.Sprintf("no topic %q", m.Topic)})
				continue
			}
			for _, id := range m.Remediations {
				if _, ok := t.Remediation(id); !ok {
					errs = append(errs, &config.Error{Key: key + " remediations", Reason: fmt.Sprintf("topic %q has no remediation %q", m.Topic, id)})
				}
			}
			for _, id := range m.Rules {
				if !slices.ContainsFunc(t.Rules, func(r topic.Rule) bool { return r.ID == id }) {
					errs = append(errs, &config.Error{Key: key + " rules", Reason: fmt.Sprintf("topic %q has no rule %q", m.Topic, id)})
				}
			}
		}
	}
	if len(errs) > 0 {
		return prefixFile(r.File, errors.Join(errs...))
	}
	return nil
}

// CheckInstances checks the sources against the configured instances: a source bound
// to an instance names a configured one; a source bound to none is refused when
// several are configured, since it could not tell whose employee an alert means
// (tenants share user names). With none configured there is nothing to check.
func (r *Rules) CheckInstances(configured []string) error {
	if len(configured) == 0 {
		return nil
	}
	var errs []error
	for i, s := range r.sources {
		key := fmt.Sprintf("sources[%d].instance", i)
		switch {
		case s.Instance == "" && len(configured) > 1:
			errs = append(errs, &config.Error{Key: key, Reason: fmt.Sprintf(
				"source %q is bound to no instance, but %d are configured (%s): set instance to the one whose alerts it receives, one source per instance",
				s.Name, len(configured), strings.Join(configured, ", "))})
		case s.Instance != "" && !slices.Contains(configured, s.Instance):
			errs = append(errs, &config.Error{Key: key, Reason: fmt.Sprintf("source %q is bound to instance %q, which is not configured (configured: %s)",
				s.Name, s.Instance, strings.Join(configured, ", "))})
		}
	}
	if len(errs) > 0 {
		return prefixFile(r.File, errors.Join(errs...))
	}
	return nil
}

// prefixFile puts the file in front of each joined error.
func prefixFile(path string, err error) error {
	if path == "" {
		return err
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s: %w", path, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", path, err)
}
