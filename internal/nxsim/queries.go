package nxsim

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/dexbridge/dexbridge/internal/nql"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
	"github.com/dexbridge/dexbridge/internal/topic"
)

// queryIDRE is Nexthink's saved-query id pattern.
var queryIDRE = regexp.MustCompile(`^#[a-z0-9_]{2,255}$`)

// savedQuery is a query saved in a tenant.
type savedQuery struct {
	ID     string
	NQL    string
	Origin string // "topics/outlook.yaml:12" or "control API"
	Plan   *nql.Plan
}

// queryStore holds a tenant's saved queries; the control API can add to it.
type queryStore struct {
	mu sync.RWMutex
	m  map[string]*savedQuery
}

func newQueryStore(base map[string]*savedQuery) *queryStore {
	m := make(map[string]*savedQuery, len(base))
	for k, v := range base {
		m[k] = v
	}
	return &queryStore{m: m}
}

func (s *queryStore) get(id string) (*savedQuery, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q, ok := s.m[id]
	return q, ok
}

func (s *queryStore) put(q *savedQuery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[q.ID] = q
}

func (s *queryStore) ids() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.m))
	for id := range s.m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// compileQuery checks the id and compiles src.
func compileQuery(id, src, origin string, schema *nql.Schema) (*savedQuery, error) {
	if !queryIDRE.MatchString(id) {
		return nil, fmt.Errorf("query id %q: want %s", id, queryIDRE)
	}
	plan, err := nql.Compile(src, schema)
	if err != nil {
		return nil, err
	}
	return &savedQuery{ID: id, NQL: src, Origin: origin, Plan: plan}, nil
}

// loadQueries reads the queries of the topics in topicsDir and of queriesFile (as
// internal/topic reads them for dexbridge), then extra, and compiles them all. An
// error names the file, the query id and the line and column in the file.
func loadQueries(topicsDir, queriesFile string, extra map[string]string, schema *nql.Schema) (map[string]*savedQuery, error) {
	if st, err := os.Stat(topicsDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("topics dir %s: not a readable directory", topicsDir)
	}
	cat, err := topic.LoadDir(topicsDir)
	if err != nil {
		return nil, err
	}
	out := map[string]*savedQuery{}
	for _, t := range cat.List() {
		if err := addQueries(out, t.File, t.Queries, schema); err != nil {
			return nil, err
		}
	}
	if queriesFile != "" {
		qs, err := topic.LoadQueries(queriesFile)
		if err != nil {
			return nil, err
		}
		if err := addQueries(out, queriesFile, qs, schema); err != nil {
			return nil, err
		}
	}
	if err := listDynamicFields(out, schema); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(extra))
	for id := range extra {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		q, err := compileQuery(id, extra[id], "config", schema)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", id, err)
		}
		out[id] = q
	}
	return out, nil
}

// addQueries compiles the queries of file into out.
func addQueries(out map[string]*savedQuery, file string, qs []topic.Query, schema *nql.Schema) error {
	for _, q := range qs {
		if prev, dup := out[q.ID]; dup {
			return fmt.Errorf("%s:%d: query %s: already defined at %s", file, q.NQLAt.Line, q.ID, prev.Origin)
		}
		sq, err := compileQuery(q.ID, q.NQL, fmt.Sprintf("%s:%d", file, q.NQLAt.Line), schema)
		if err != nil {
			var ne *nql.Error
			if errors.As(err, &ne) {
				line, col := q.NQLAt.In(ne.Line, ne.Column)
				return fmt.Errorf("%s:%d:%d: query %s: %s", file, line, col, q.ID, ne.Msg)
			}
			return fmt.Errorf("%s:%d: query %s: %w", file, q.NQLAt.Line, q.ID, err)
		}
		out[q.ID] = sq
	}
	return nil
}

// discoveryDevicesID is the saved query that lists the devices discovery caches.
const discoveryDevicesID = "#dexbridge_discovery_devices"

// listDynamicFields saves discovery's device query as a tenant would: with the
// tenant's own dynamic fields (fleet.DynamicFields) added to its list. Infinity's
// API lists no custom fields and runs saved queries only, so dexbridge learns a
// tenant's dynamic fields from the columns of this export.
func listDynamicFields(qs map[string]*savedQuery, schema *nql.Schema) error {
	q, ok := qs[discoveryDevicesID]
	if !ok {
		return nil
	}
	text := strings.TrimRight(q.NQL, " \n") + ",\n  " + strings.Join(fleet.DynamicFields(), ", ") + "\n"
	sq, err := compileQuery(q.ID, text, q.Origin, schema)
	if err != nil {
		return fmt.Errorf("%s: query %s with the tenant's dynamic fields: %w", q.Origin, q.ID, err)
	}
	qs[q.ID] = sq
	return nil
}
