package topic

import (
	"time"

	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxql"
)

// Topic is one diagnosable subject ("Outlook keeps crashing").
type Topic struct {
	ID                  string        `yaml:"id"`
	LegacyID            string        `yaml:"legacy_id"`
	Title               string        `yaml:"title"`
	Description         string        `yaml:"description"`
	Platforms           []string      `yaml:"platforms"`
	Phrases             []string      `yaml:"phrases"` // how employees say they have the problem (phrases.go)
	DataCollection      []string      `yaml:"data_collection"`
	Queries             []Query       `yaml:"queries"`
	Rules               []Rule        `yaml:"rules"`
	Remediations        []Remediation `yaml:"remediations"`
	GenericRemediations []string      `yaml:"generic_remediations"`
	// MaxAge is how old the data of a diagnosis may be before it is stale (nil:
	// DefaultMaxAge).
	MaxAge *config.Duration `yaml:"max_age"`
	// Translations are the employee-facing texts in other locales, by locale
	// (translations.go); a text not translated is said in English.
	Translations map[string]Translation `yaml:"translations"`

	File string `yaml:"-"` // where it was read from, for messages
}

// Query is a saved NQL query the topic runs on a device.
type Query struct {
	ID          string `yaml:"id"`
	Description string `yaml:"description"`
	// Parameters maps each query parameter to the device attribute that fills it
	// ("device.name", "device.collector.uid", "device.uid").
	Parameters map[string]string `yaml:"parameters"`
	NQL        string            `yaml:"nql"`
	// NQLAt is where NQL is in its file, to give an NQL error's position there.
	NQLAt TextPos `yaml:"-"`
	// NXQL is the query's form for Nexthink V6 Engines; nil when it has none (it
	// then cannot run on a V6 instance).
	NXQL *nxql.FormSpec `yaml:"nxql"`
}

// Rule is a CEL expression over the queries' fields; when true, the problem it
// names is present and its remediations are suggested.
type Rule struct {
	ID           string   `yaml:"id"`
	Title        string   `yaml:"title"`
	Description  string   `yaml:"description"`
	When         string   `yaml:"when"`
	Remediations []string `yaml:"remediations"`
}

// Remediation is a remote action (with inputs computed from the fields) or a
// message for the employee.
type Remediation struct {
	ID           string            `yaml:"id"`
	Title        string            `yaml:"title"`
	RemoteAction string            `yaml:"remote_action"`
	Params       map[string]string `yaml:"params"`
	Message      string            `yaml:"message"`
}

// Remediation returns the remediation with id.
func (t *Topic) Remediation(id string) (*Remediation, bool) {
	for i := range t.Remediations {
		if t.Remediations[i].ID == id {
			return &t.Remediations[i], true
		}
	}
	return nil, false
}

// SupportsPlatform reports whether the topic applies to a device's platform.
func (t *Topic) SupportsPlatform(platform string) bool {
	for _, p := range t.Platforms {
		if p == platform {
			return true
		}
	}
	return false
}

// DataMaxAge is how old the data of a diagnosis may be before it is stale.
func (t *Topic) DataMaxAge() time.Duration {
	if t.MaxAge == nil {
		return DefaultMaxAge
	}
	return t.MaxAge.D()
}
