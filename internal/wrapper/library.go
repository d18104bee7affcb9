package wrapper

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/rules"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// Query is a saved query the wrapper can run: compiled, with its analysis.
type Query struct {
	ID       string
	Plan     *nql.Plan
	Analysis nql.Analysis
}

// Cacheable reports whether the cache may answer q at all: it selects one device by
// name or collector UID against a parameter and reads only plain device fields (no
// remote-action outputs, packages or events). Whether it does for a given device
// depends on that device's cached fields and their age (see Wrapper).
func (q *Query) Cacheable() bool {
	return q.Analysis.DeviceOnly && q.Analysis.DeviceKey != nil
}

// Library is an immutable set of saved queries by id: the topics' and those of the
// saved-queries file. A reload builds a new one.
type Library struct {
	byID map[string]*Query
	ids  []string
}

// NewLibrary gathers the queries of a compiled topic set (compiled already) and the
// queries of the saved-queries file (compiled here). An id defined twice is refused.
func NewLibrary(set *rules.Set, extra []topic.Query) (*Library, error) {
	l := &Library{byID: map[string]*Query{}}
	var problems []string
	add := func(q *Query, where string) {
		if _, dup := l.byID[q.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s: query %s is defined twice", where, q.ID))
			return
		}
		l.byID[q.ID] = q
		l.ids = append(l.ids, q.ID)
	}
	if set != nil {
		for _, t := range set.Topics() {
			for _, q := range t.Queries() {
				add(&Query{ID: q.ID, Plan: q.Plan, Analysis: q.Plan.Analysis()}, "topic "+t.ID())
			}
		}
	}
	for _, q := range extra {
		plan, err := nql.Compile(q.NQL, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("query %s: %v", q.ID, err))
			continue
		}
		add(&Query{ID: q.ID, Plan: plan, Analysis: plan.Analysis()}, "saved queries")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("saved queries: %s", strings.Join(problems, "; "))
	}
	slices.Sort(l.ids)
	return l, nil
}

// Get returns the query with id.
func (l *Library) Get(id string) (*Query, bool) {
	q, ok := l.byID[id]
	return q, ok
}

// Len is the number of queries.
func (l *Library) Len() int { return len(l.ids) }

// IDs lists the query ids, sorted.
func (l *Library) IDs() []string { return slices.Clone(l.ids) }
