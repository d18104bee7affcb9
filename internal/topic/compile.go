package topic

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/nql"
)

// Program is one compiled topic: its queries and its rules, ready to evaluate.
type Program struct {
	topic        *Topic
	queries      []*SavedQuery
	fields       []string
	rules        []*rule
	remediations map[string]*remediation
}

type rule struct {
	def  Rule
	when *expression
}

type remediation struct {
	def    Remediation
	action *allowlist.RemoteAction // nil for a message
	params []param                 // sorted by name
}

type param struct {
	name string
	expr *expression
}

// Topic returns the topic definition.
func (p *Program) Topic() *Topic { return p.topic }

// ID returns the topic id.
func (p *Program) ID() string { return p.topic.ID }

// Queries returns the topic's compiled queries in file order.
func (p *Program) Queries() []*SavedQuery { return p.queries }

// Fields returns every field the topic's queries return, sorted.
func (p *Program) Fields() []string { return p.fields }

// MaxAge is how old the data of a diagnosis may be before it is stale.
func (p *Program) MaxAge() time.Duration { return p.topic.DataMaxAge() }

// DataCollection returns the data-collection remote actions a refresh runs first.
func (p *Program) DataCollection() []string { return p.topic.DataCollection }

// RuleFields returns the fields rule id reads, in order of first use.
func (p *Program) RuleFields(id string) ([]string, bool) {
	for _, r := range p.rules {
		if r.def.ID == id {
			return r.when.fields, true
		}
	}
	return nil, false
}

// Compile checks and compiles every topic of cat against allow. The error, when there
// is one, is Problems: every problem found, not just the first.
func Compile(cat *Catalog, allow *allowlist.List) (*Set, error) {
	if cat == nil || allow == nil {
		return nil, errors.New("topics: compile needs a topic catalogue and an allow-list")
	}
	s := &Set{catalog: cat, allow: allow, byID: map[string]*Program{}, queries: map[string]*SavedQuery{}, loadedAt: time.Now().UTC()}
	var probs Problems
	for _, t := range cat.List() {
		c := &compiler{t: t, allow: allow}
		p := c.compile()
		probs = append(probs, c.probs...)
		if p != nil {
			s.topics = append(s.topics, p)
			s.byID[p.ID()] = p
			for _, q := range p.queries {
				s.queries[q.ID] = q
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return s, nil
}

// compiler compiles one topic, collecting its problems.
type compiler struct {
	t     *Topic
	allow *allowlist.List
	probs Problems
}

func (c *compiler) add(path, format string, args ...any) {
	c.probs = append(c.probs, Problem{File: c.t.File, Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (c *compiler) allowlistName() string {
	if f := c.allow.File(); f != "" {
		return f
	}
	return "the remote-action allow-list"
}

// action checks that remote action id is allow-listed with purpose and runs on every
// platform of the topic, and returns it (nil when it is not allow-listed).
func (c *compiler) action(path, id string, purpose allowlist.Purpose, context string) *allowlist.RemoteAction {
	a, ok := c.allow.Get(id)
	if !ok {
		c.add(path, "%sremote action %s is not in %s", context, id, c.allowlistName())
		return nil
	}
	if a.Purpose != purpose {
		c.add(path, "%sremote action %s is a %s action, want %s", context, id, a.Purpose, purpose)
	}
	for _, p := range c.t.Platforms {
		if !a.SupportsPlatform(p) {
			c.add(path, "%sremote action %s does not run on %s (it runs on %s), a platform of this topic", context, id, p, strings.Join(a.Platforms, ", "))
		}
	}
	return a
}

func (c *compiler) compile() *Program {
	t := c.t
	p := &Program{topic: t, remediations: map[string]*remediation{}}
	collected := map[string]bool{}
	for j, id := range t.DataCollection {
		c.action(fmt.Sprintf("data_collection[%d]", j), id, allowlist.DataCollection, "")
		collected[id] = true
	}

	known := map[string]bool{}
	for i, q := range t.Queries {
		path := fmt.Sprintf("queries[%d]", i)
		plan, err := nql.Compile(q.NQL, nil)
		if err != nil {
			c.add(path+".nql", "%s", nqlReason(q.ID, err))
			continue
		}
		a := plan.Analysis()
		for _, name := range a.Parameters {
			if _, ok := q.Parameters[name]; !ok {
				c.add(path+".parameters", "query %s uses $%s, which parameters does not fill (say which device attribute fills it, e.g. %s: device.name)", q.ID, name, name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(q.Parameters)) {
			if !slices.Contains(a.Parameters, name) {
				c.add(path+".parameters."+name, "query %s has no $%s", q.ID, name)
			}
		}
		c.remoteActionFields(path+".nql", q.ID, a.Fields, collected)
		dating, undated := datings(a.Headers)
		for _, why := range undated {
			c.add(path+".nql", "query %s %s", q.ID, why)
		}
		for _, h := range a.Headers {
			known[h] = true
		}
		p.queries = append(p.queries, &SavedQuery{ID: q.ID, Parameters: maps.Clone(q.Parameters), Plan: plan, Analysis: a, Dating: dating})
	}
	p.fields = slices.Sorted(maps.Keys(known))

	// When a query did not compile, its fields are unknown: checking the expressions
	// would only add noise, so only the remote actions are checked further.
	var env *cel.Env
	if len(p.queries) == len(t.Queries) {
		var err error
		if env, err = newEnv(p.fields); err != nil {
			c.add("queries", "cannot declare the queries' fields as CEL variables: %v", err)
		}
	}
	for i, r := range t.Rules {
		if env == nil {
			break
		}
		path := fmt.Sprintf("rules[%d].when", i)
		e, err := compileExpr(env, r.When, known)
		if err != nil {
			c.add(path, "rule %s: %v", r.ID, err)
			continue
		}
		if k := e.out.String(); k != "bool" && k != "dyn" {
			c.add(path, "rule %s yields %s, want bool", r.ID, k)
			continue
		}
		p.rules = append(p.rules, &rule{def: r, when: e})
	}
	for k, r := range t.Remediations {
		path := fmt.Sprintf("remediations[%d]", k)
		rem := &remediation{def: r}
		if r.RemoteAction != "" {
			rem.action = c.action(path+".remote_action", r.RemoteAction, allowlist.Remediation, "")
		}
		for _, name := range slices.Sorted(maps.Keys(r.Params)) {
			ppath := path + ".params." + name
			if rem.action != nil {
				if _, ok := rem.action.Input(name); !ok {
					c.add(ppath, "remote action %s has no input %q (it declares %s)", r.RemoteAction, name, inputNames(rem.action))
				}
			}
			if env == nil {
				continue
			}
			e, err := compileExpr(env, r.Params[name], known)
			if err != nil {
				c.add(ppath, "%v", err)
				continue
			}
			rem.params = append(rem.params, param{name: name, expr: e})
		}
		if rem.action != nil {
			for _, in := range rem.action.Inputs {
				if _, ok := r.Params[in.Name]; in.Required && !ok {
					c.add(path+".params", "remote action %s requires input %s, which params does not fill", r.RemoteAction, in.Name)
				}
			}
		}
		p.remediations[r.ID] = rem
	}
	if len(c.probs) > 0 {
		return nil
	}
	return p
}

// remoteActionFields checks the remote_action.<id>.execution.* fields a query reads:
// the action must be an allow-listed data-collection action the topic lists in
// data_collection (else a refresh would not run it), and the output one it declares.
func (c *compiler) remoteActionFields(path, queryID string, fields []string, collected map[string]bool) {
	checked := map[string]*allowlist.RemoteAction{}
	for _, f := range fields {
		id, output, ok := remoteActionField(f)
		if !ok {
			continue
		}
		a, done := checked[id]
		if !done {
			if collected[id] {
				a, _ = c.allow.Get(id) // checked as data_collection already
			} else {
				c.add(path, "query %s reads outputs of %s, which data_collection does not list (a refresh would not run it)", queryID, id)
				a = c.action(path, id, allowlist.DataCollection, fmt.Sprintf("query %s reads %s: ", queryID, f))
			}
			checked[id] = a
		}
		if a != nil && output != "" && !a.HasOutput(output) {
			c.add(path, "query %s reads output %s of %s, which declares only %s", queryID, output, id, strings.Join(a.Outputs, ", "))
		}
	}
}

// remoteActionField splits remote_action.<id>.execution.<rest> into "#<id>" and the
// output name ("" for status, status_details and time).
func remoteActionField(f string) (id, output string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(f, "device."), "remote_action.")
	if !ok {
		return "", "", false
	}
	name, rest, ok := strings.Cut(rest, ".execution.")
	if !ok {
		return "", "", false
	}
	output, _ = strings.CutPrefix(rest, "outputs.")
	if output == rest {
		output = ""
	}
	return "#" + name, output, true
}

func inputNames(a *allowlist.RemoteAction) string {
	if len(a.Inputs) == 0 {
		return "no inputs"
	}
	names := make([]string, len(a.Inputs))
	for i, in := range a.Inputs {
		names[i] = in.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// nqlReason describes an NQL compile error of query id, with its line and column in
// the query text.
func nqlReason(id string, err error) string {
	var ne *nql.Error
	if errors.As(err, &ne) {
		return fmt.Sprintf("query %s: NQL line %d, column %d: %s", id, ne.Line, ne.Column, ne.Msg)
	}
	return fmt.Sprintf("query %s: %v", id, err)
}

// checkQueryFile reads and compiles a file of saved queries that belong to no topic
// (config/queries.yaml): each compiles as NQL and none has the id of a topic's query.
// The error is Problems, or the file's own load error.
func checkQueryFile(path string, cat *Catalog) ([]*SavedQuery, error) {
	qs, err := LoadQueries(path)
	if err != nil {
		return nil, err
	}
	owners := map[string]string{}
	for _, t := range cat.List() {
		for _, q := range t.Queries {
			owners[q.ID] = t.File
		}
	}
	var probs Problems
	out := make([]*SavedQuery, 0, len(qs))
	for i, q := range qs {
		key := fmt.Sprintf("queries[%d]", i)
		if f, dup := owners[q.ID]; dup {
			probs = append(probs, Problem{File: path, Path: key + ".id", Reason: fmt.Sprintf("query %s is also defined by %s", q.ID, f)})
		}
		plan, err := nql.Compile(q.NQL, nil)
		if err != nil {
			probs = append(probs, Problem{File: path, Path: key + ".nql", Reason: nqlReason(q.ID, err)})
			continue
		}
		out = append(out, &SavedQuery{ID: q.ID, Plan: plan, Analysis: plan.Analysis()})
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}
