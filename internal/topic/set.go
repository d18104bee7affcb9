package topic

import (
	"time"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nql"
)

// Set is one consistent set of what a topics worker runs: the topics, compiled and
// checked against the remote-action allow-list, and every saved query it may run (the
// topics' and those of the saved-queries file). It is immutable and safe for
// concurrent use: a reload loads a new one and swaps it in only when it has no
// problem.
type Set struct {
	catalog  *Catalog
	allow    *allowlist.List
	topics   []*Program
	byID     map[string]*Program
	queries  map[string]*SavedQuery
	loadedAt time.Time
}

// SavedQuery is a saved query, compiled: a topic's or one of the saved-queries file.
type SavedQuery struct {
	ID string // "#diagnose_outlook_issues"
	// Parameters maps each NQL parameter (without $) of a topic's query to the device
	// attribute that fills it ("device.name", "device.collector.uid", "device.uid");
	// nil for a query of the saved-queries file, whose caller gives the values.
	Parameters map[string]string
	Plan       *nql.Plan
	Analysis   nql.Analysis // Headers are the keys of the fields it returns
	// Dating says, for each column of a topic's query, where the time of its data
	// comes from; nil for a query of the saved-queries file.
	Dating map[string]Dating
}

// Topic returns the compiled topic with id.
func (s *Set) Topic(id string) (*Program, bool) {
	p, ok := s.byID[id]
	return p, ok
}

// Topics returns the compiled topics sorted by id.
func (s *Set) Topics() []*Program { return s.topics }

// Catalog returns the topics the set was compiled from.
func (s *Set) Catalog() *Catalog { return s.catalog }

// Allowlist returns the allow-list the set was checked against.
func (s *Set) Allowlist() *allowlist.List { return s.allow }

// Query returns the saved query with id.
func (s *Set) Query(id string) (*SavedQuery, bool) {
	q, ok := s.queries[id]
	return q, ok
}

// QueryCount is the number of saved queries.
func (s *Set) QueryCount() int { return len(s.queries) }

// LoadedAt is when the set was compiled.
func (s *Set) LoadedAt() time.Time { return s.loadedAt }
