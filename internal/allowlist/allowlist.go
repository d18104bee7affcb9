// Package allowlist reads config/remote_actions.yaml: the remote actions dexbridge
// may trigger, each with its purpose, platforms, declared inputs and (for data
// collection) outputs. The file is checked against schemas/config/remote_actions.json
// and every problem names the file and the key.
//
// The list is what offline checks (`dexbridge check`, topic.Compile) rely on; at run
// time the tenant's Remote Actions API details stay authoritative.
package allowlist

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/dexbridge/dexbridge/internal/config"
)

// Purpose is what a remote action is for.
type Purpose string

// Purposes, as config/remote_actions.yaml spells them (the Remote Actions API says
// DATA_COLLECTION and REMEDIATION).
const (
	DataCollection Purpose = "data_collection"
	Remediation    Purpose = "remediation"
)

// Input is a declared input of a remote action. The Remote Actions API takes every
// input value as a string.
type Input struct {
	Name        string `yaml:"name" json:"name"`
	Required    bool   `yaml:"required" json:"required"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// RemoteAction is one remote action dexbridge may trigger.
type RemoteAction struct {
	ID          string   `yaml:"id" json:"id"` // NQL id, "#set_outlook_online"
	Title       string   `yaml:"title" json:"title"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Purpose     Purpose  `yaml:"purpose" json:"purpose"`
	Platforms   []string `yaml:"platforms" json:"platforms,omitempty"` // empty: any platform
	Inputs      []Input  `yaml:"inputs" json:"inputs,omitempty"`
	Outputs     []string `yaml:"outputs" json:"outputs,omitempty"` // empty: not declared
}

// Input returns the declared input called name.
func (a *RemoteAction) Input(name string) (Input, bool) {
	for _, in := range a.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// SupportsPlatform reports whether the action runs on platform ("Windows", "macOS").
func (a *RemoteAction) SupportsPlatform(platform string) bool {
	return len(a.Platforms) == 0 || slices.Contains(a.Platforms, platform)
}

// HasOutput reports whether NQL may read output name of the action: true when the
// action declares it, or declares no outputs at all.
func (a *RemoteAction) HasOutput(name string) bool {
	return len(a.Outputs) == 0 || slices.Contains(a.Outputs, name)
}

// List is the allow-list, immutable once built: a reload builds a new List.
type List struct {
	file    string
	actions []*RemoteAction
	byID    map[string]*RemoteAction
}

type document struct {
	RemoteActions []RemoteAction `yaml:"remote_actions"`
}

// LoadFile reads and checks the allow-list at path. Every problem is reported, each
// prefixed with the file.
func LoadFile(path string) (*List, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("remote actions: %w", err)
	}
	l, err := Parse(raw)
	if err != nil {
		return nil, prefix(path, err)
	}
	l.file = path
	return l, nil
}

// Parse decodes and checks an allow-list document.
func Parse(raw []byte) (*List, error) {
	var d document
	if err := config.DecodeStrict(raw, "config/remote_actions.json", &d); err != nil {
		return nil, err
	}
	return New(d.RemoteActions)
}

// New builds a list, checking what the schema cannot: unique ids and input names.
func New(actions []RemoteAction) (*List, error) {
	l := &List{byID: make(map[string]*RemoteAction, len(actions))}
	var errs []error
	for i := range actions {
		a := actions[i]
		key := fmt.Sprintf("remote_actions[%d]", i)
		if _, dup := l.byID[a.ID]; dup {
			errs = append(errs, &config.Error{Key: key + ".id", Reason: fmt.Sprintf("duplicate remote action %q", a.ID)})
			continue
		}
		if a.Purpose != DataCollection && a.Purpose != Remediation {
			errs = append(errs, &config.Error{Key: key + ".purpose", Reason: fmt.Sprintf("want %q or %q, got %q", DataCollection, Remediation, a.Purpose)})
		}
		seen := map[string]bool{}
		for j, in := range a.Inputs {
			if seen[in.Name] {
				errs = append(errs, &config.Error{Key: fmt.Sprintf("%s.inputs[%d].name", key, j), Reason: fmt.Sprintf("duplicate input %q", in.Name)})
			}
			seen[in.Name] = true
		}
		a.Platforms = slices.Clone(a.Platforms)
		a.Inputs = slices.Clone(a.Inputs)
		a.Outputs = slices.Clone(a.Outputs)
		l.byID[a.ID] = &a
		l.actions = append(l.actions, &a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(l.actions, func(i, j int) bool { return l.actions[i].ID < l.actions[j].ID })
	return l, nil
}

// Get returns the remote action with NQL id ("#repair_onedrive").
func (l *List) Get(id string) (*RemoteAction, bool) {
	a, ok := l.byID[id]
	return a, ok
}

// List returns the remote actions sorted by id. Callers must not modify them.
func (l *List) List() []*RemoteAction { return l.actions }

// File is the file the list was read from, "" when built with New or Parse.
func (l *List) File() string { return l.file }

// prefix puts the file in front of each joined error, so that every line of the
// message names it.
func prefix(path string, err error) error {
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
