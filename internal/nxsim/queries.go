package nxsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/internal/nql"
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

// loadQueries reads every <topicsDir>/*.yaml and queriesFile (each with a top-level
// `queries:` list of {id, nql}), then extra, and compiles them all. An error names the
// file, the query id and the line and column in the file.
func loadQueries(topicsDir, queriesFile string, extra map[string]string, schema *nql.Schema) (map[string]*savedQuery, error) {
	files, err := filepath.Glob(filepath.Join(topicsDir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("topics dir %s: %w", topicsDir, err)
	}
	if st, err := os.Stat(topicsDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("topics dir %s: not a readable directory", topicsDir)
	}
	sort.Strings(files)
	if queriesFile != "" {
		files = append(files, queriesFile)
	}
	out := map[string]*savedQuery{}
	for _, file := range files {
		if err := loadQueryFile(file, schema, out); err != nil {
			return nil, err
		}
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

// queryDoc is the part of a topic or queries file nxsim reads.
type queryDoc struct {
	Queries []struct {
		ID  string    `yaml:"id"`
		NQL yaml.Node `yaml:"nql"`
	} `yaml:"queries"`
}

func loadQueryFile(file string, schema *nql.Schema, out map[string]*savedQuery) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("saved queries: %w", err)
	}
	var doc queryDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("saved queries %s: %w", file, err)
	}
	lines := strings.Split(string(b), "\n")
	for k, q := range doc.Queries {
		if q.ID == "" {
			return fmt.Errorf("%s: queries[%d]: no id", file, k)
		}
		if q.NQL.Kind != yaml.ScalarNode || strings.TrimSpace(q.NQL.Value) == "" {
			return fmt.Errorf("%s: query %s: no nql text", file, q.ID)
		}
		if prev, dup := out[q.ID]; dup {
			return fmt.Errorf("%s:%d: query %s: already defined at %s", file, q.NQL.Line, q.ID, prev.Origin)
		}
		origin := fmt.Sprintf("%s:%d", file, q.NQL.Line)
		sq, err := compileQuery(q.ID, q.NQL.Value, origin, schema)
		if err != nil {
			var ne *nql.Error
			if errors.As(err, &ne) {
				line, col := filePosition(&q.NQL, lines, ne.Line, ne.Column)
				return fmt.Errorf("%s:%d:%d: query %s: %s", file, line, col, q.ID, ne.Msg)
			}
			return fmt.Errorf("%s:%d: query %s: %w", file, q.NQL.Line, q.ID, err)
		}
		out[q.ID] = sq
	}
	return nil
}

// filePosition maps a 1-based position in a YAML scalar's value to the file.
func filePosition(n *yaml.Node, lines []string, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		fl := n.Line + line // the value starts on the line after the indicator
		indent := 0
		if fl-1 < len(lines) {
			l := lines[fl-1]
			indent = len(l) - len(strings.TrimLeft(l, " "))
		}
		return fl, indent + col
	default:
		if line == 1 {
			off := 0
			if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
				off = 1
			}
			return n.Line, n.Column + off + col - 1
		}
		return n.Line + line - 1, col
	}
}
