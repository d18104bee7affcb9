package topic

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/internal/config"
)

// Catalog is a consistent set of topics, immutable once loaded: a reload builds a
// new Catalog and swaps it in whole, so a bad file never half-replaces a good set.
type Catalog struct {
	topics []*Topic
	byID   map[string]*Topic
}

// LoadDir reads every *.yaml file in dir. It reports every problem it finds, each
// prefixed with its file, not just the first.
func LoadDir(dir string) (*Catalog, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("topics: no *.yaml files in %s", dir)
	}
	sort.Strings(files)
	var errs []error
	var topics []*Topic
	for _, f := range files {
		t, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		topics = append(topics, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return New(topics)
}

// New builds a catalog, checking what spans topics (unique ids and query ids).
func New(topics []*Topic) (*Catalog, error) {
	c := &Catalog{byID: map[string]*Topic{}}
	queryOwner := map[string]string{}
	phraseOwner := map[string]string{}
	var errs []error
	for _, t := range topics {
		if other, dup := c.byID[t.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: topic id %q is also used by %s", t.File, t.ID, other.File))
			continue
		}
		for _, q := range t.Queries {
			if owner, dup := queryOwner[q.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: query %s is also defined by topic %s", t.File, q.ID, owner))
			}
			queryOwner[q.ID] = t.ID
		}
		// A phrase of two topics, in any language, could not tell them apart.
		keys, phrases := t.allPhrases()
		for i, p := range phrases {
			n := NormalizePhrase(p)
			if owner, dup := phraseOwner[n]; dup && owner != t.ID {
				errs = append(errs, fmt.Errorf("%s: %s: %q is also a phrase of topic %s", t.File, keys[i], p, owner))
			}
			phraseOwner[n] = t.ID
		}
		c.byID[t.ID] = t
		c.topics = append(c.topics, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(c.topics, func(i, j int) bool { return c.topics[i].ID < c.topics[j].ID })
	return c, nil
}

// LoadFile reads and checks one topic file.
func LoadFile(path string) (*Topic, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(raw)
	if err != nil {
		return nil, prefixFile(path, err)
	}
	t.File = path
	if want := strings.TrimSuffix(filepath.Base(path), ".yaml"); t.ID != want {
		return nil, fmt.Errorf("%s: id: %q must match the file name %q", path, t.ID, want)
	}
	return t, nil
}

// prefixFile puts the file in front of each of the joined errors, so that every line
// of the message names it.
func prefixFile(path string, err error) error {
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

// queryIDPattern is Nexthink's saved-query id pattern.
var queryIDPattern = regexp.MustCompile(`^#[a-z0-9_]{2,255}$`)

// LoadQueries reads a file of saved queries that belong to no topic
// (config/queries.yaml): a top-level `queries:` list whose items have the form of a
// topic's queries. It checks the keys, the ids (pattern, duplicates) and that each
// has NQL; Files.Check compiles the NQL.
func LoadQueries(path string) ([]Query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Queries []Query `yaml:"queries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	locateNQL(raw, doc.Queries)
	var errs []error
	seen := map[string]bool{}
	for i, q := range doc.Queries {
		key := fmt.Sprintf("queries[%d]", i)
		switch {
		case !queryIDPattern.MatchString(q.ID):
			errs = append(errs, &config.Error{Key: key + ".id", Reason: fmt.Sprintf("want %s, got %q", queryIDPattern, q.ID)})
		case seen[q.ID]:
			errs = append(errs, &config.Error{Key: key + ".id", Reason: fmt.Sprintf("duplicate query %s", q.ID)})
		}
		seen[q.ID] = true
		if strings.TrimSpace(q.NQL) == "" {
			errs = append(errs, &config.Error{Key: key + ".nql", Reason: "required"})
		}
	}
	if len(errs) > 0 {
		return nil, prefixFile(path, errors.Join(errs...))
	}
	return doc.Queries, nil
}

// Parse decodes and checks a topic document.
func Parse(raw []byte) (*Topic, error) {
	var t Topic
	if err := config.DecodeStrict(raw, "config/topic.json", &t); err != nil {
		return nil, err
	}
	locateNQL(raw, t.Queries)
	var errs []error
	if err := t.checkReferences(); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	errs = append(errs, t.checkTranslations(raw)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &t, nil
}

// checkReferences checks the ids a topic uses within itself.
func (t *Topic) checkReferences() error {
	var errs []error
	if t.MaxAge != nil && t.MaxAge.D() <= 0 {
		errs = append(errs, &config.Error{Key: "max_age", Reason: "want a positive duration, such as 24h or 7d"})
	}
	ids := map[string]bool{}
	for i, r := range t.Remediations {
		if ids[r.ID] {
			errs = append(errs, &config.Error{Key: fmt.Sprintf("remediations[%d].id", i), Reason: fmt.Sprintf("duplicate remediation %q", r.ID)})
		}
		ids[r.ID] = true
	}
	rules := map[string]bool{}
	for i, r := range t.Rules {
		if rules[r.ID] {
			errs = append(errs, &config.Error{Key: fmt.Sprintf("rules[%d].id", i), Reason: fmt.Sprintf("duplicate rule %q", r.ID)})
		}
		rules[r.ID] = true
		for j, id := range r.Remediations {
			if !ids[id] {
				errs = append(errs, &config.Error{Key: fmt.Sprintf("rules[%d].remediations[%d]", i, j), Reason: fmt.Sprintf("no remediation %q in this topic", id)})
			}
		}
	}
	for i, id := range t.GenericRemediations {
		if !ids[id] {
			errs = append(errs, &config.Error{Key: fmt.Sprintf("generic_remediations[%d]", i), Reason: fmt.Sprintf("no remediation %q in this topic", id)})
		}
	}
	errs = append(errs, checkPhrases("phrases", t.Phrases)...)
	return errors.Join(errs...)
}

// List returns the topics sorted by id.
func (c *Catalog) List() []*Topic { return c.topics }

// Get returns the topic with id.
func (c *Catalog) Get(id string) (*Topic, bool) {
	t, ok := c.byID[id]
	return t, ok
}
