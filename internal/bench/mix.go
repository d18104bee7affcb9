package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The kinds of chatbot request in the mix.
const (
	kindIdentify       = "identify"
	kindDiagnoseLive   = "diagnose, live topic"
	kindDiagnoseCached = "diagnose, cached topic"
	kindRemediate      = "remediate"
	kindPoll           = "poll an execution"
)

// mixAction is the remote action the mix's remediations trigger (Windows, no inputs).
const mixAction = "#repair_onedrive"

// directTokenLifetime is how long a chatbot calling Nexthink itself keeps a token:
// the tenant's token lifetime (nxsim's default, Nexthink's 15 minutes).
const directTokenLifetime = 15 * time.Minute

// mixEntry is one share of the mix.
type mixEntry struct {
	kind   string
	topic  string // diagnose: the topic
	weight int    // requests per 100
}

// realisticMix is what chatbots ask, per 100 requests: half identify an employee's
// devices, 30 diagnose (24 a live topic, 6 the cached L1 checklist), 10 remediate and
// 10 poll an execution they started.
func realisticMix() []mixEntry {
	return []mixEntry{
		{kindIdentify, "", 50},
		{kindDiagnoseLive, "outlook", 6},
		{kindDiagnoseLive, "onedrive", 6},
		{kindDiagnoseLive, "slow_pc", 6},
		{kindDiagnoseLive, "printing", 6},
		{kindDiagnoseCached, "l1_device_checklist", 6},
		{kindRemediate, "", 10},
		{kindPoll, "", 10},
	}
}

// describeMix states the mix in one line.
func describeMix(mix []mixEntry) string {
	var parts []string
	for _, k := range mixKinds(mix) {
		parts = append(parts, fmt.Sprintf("%d %s", k.weight, k.label()))
	}
	return strings.Join(parts, ", ") + " (per 100 requests)"
}

// mixKind is the share of one kind of request in the mix.
type mixKind struct {
	kind   string
	topics []string
	weight int
}

// label names the kind with what it asks.
func (k mixKind) label() string {
	switch {
	case len(k.topics) > 0:
		return k.kind + " (" + strings.Join(k.topics, ", ") + ")"
	case k.kind == kindIdentify:
		return k.kind + " (by username)"
	case k.kind == kindRemediate:
		return k.kind + " (" + mixAction + ", no wait)"
	case k.kind == kindPoll:
		return k.kind + " (GET, no wait)"
	}
	return k.kind
}

// direct says what the kind costs a chatbot calling Nexthink itself.
func (k mixKind) direct() string {
	switch k.kind {
	case kindIdentify, kindPoll:
		return "1 NQL call each"
	case kindDiagnoseLive:
		return "1 NQL call per query of the topic (slow_pc has 2)"
	case kindDiagnoseCached:
		return "1 NQL call per query of the topic (1)"
	case kindRemediate:
		return "1 trigger + 1 result query each"
	}
	return "-"
}

// mixKinds groups the mix by kind, in its order.
func mixKinds(mix []mixEntry) []mixKind {
	var out []mixKind
	for _, e := range mix {
		i := slices.IndexFunc(out, func(k mixKind) bool { return k.kind == e.kind })
		if i < 0 {
			out = append(out, mixKind{kind: e.kind})
			i = len(out) - 1
		}
		out[i].weight += e.weight
		if e.topic != "" {
			out[i].topics = append(out[i].topics, e.topic)
		}
	}
	return out
}

// mixSchedule spreads the mix over 100 slots in a fixed shuffled order, so that every
// 100 consecutive requests hold the mix exactly and the kinds interleave.
func mixSchedule(mix []mixEntry) []mixEntry {
	var slots []mixEntry
	for _, e := range mix {
		for range e.weight {
			slots = append(slots, e)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	return slots
}

// directCalls is what a chatbot calling Nexthink itself makes for a request: NQL
// calls and Remote Actions API calls. Identify is one NQL call, a diagnosis one per
// query of its topic, a remediation one trigger and one result query, a poll one NQL
// call.
func directCalls(e mixEntry, queriesPerTopic map[string]int) (nql, actions int) {
	switch e.kind {
	case kindIdentify, kindPoll:
		return 1, 0
	case kindDiagnoseLive, kindDiagnoseCached:
		return queriesPerTopic[e.topic], 0
	case kindRemediate:
		return 1, 1
	}
	return 0, 0
}

// kindTally is what one kind of request got.
type kindTally struct {
	sent      int
	codes     map[int]int     // HTTP status -> count; 0 is no answer (transport error, timeout)
	ok        []time.Duration // latencies of the 2xx answers
	fromCache int             // diagnose, identify: 2xx answers with source cache
}

// mixDriver sends the mix's requests as chatbots do, through dexbridge's REST API,
// and tallies the answers by kind.
type mixDriver struct {
	c        *chatbot
	schedule []mixEntry
	users    []string // employees in the cache
	devices  []string // online Windows devices in the cache

	mu     sync.Mutex
	execs  []string // executions triggered, oldest first
	tally  map[string]*kindTally
	direct struct{ nql, actions int } // what the chatbot alone would have called
	topicQ map[string]int
}

func newMixDriver(c *chatbot, users, devices []string, queriesPerTopic map[string]int) *mixDriver {
	return &mixDriver{c: c, schedule: mixSchedule(realisticMix()), users: users, devices: devices,
		tally: map[string]*kindTally{}, topicQ: queriesPerTopic}
}

// reset forgets the tallies (not the executions to poll).
func (m *mixDriver) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tally = map[string]*kindTally{}
	m.direct.nql, m.direct.actions = 0, 0
}

// seed triggers n executions so that polls have something to poll from the start.
func (m *mixDriver) seed(ctx context.Context, n int) error {
	for i := range n {
		if code, err := m.remediate(ctx, i); err != nil {
			return fmt.Errorf("seed execution: %d %w", code, err)
		}
	}
	return nil
}

// do sends request i of the mix; any 2xx counts as 200 for openLoop.
func (m *mixDriver) do(ctx context.Context, i int) (int, error) {
	e := m.schedule[i%len(m.schedule)]
	start := time.Now()
	var code int
	var err error
	cached := false
	switch e.kind {
	case kindIdentify:
		code, cached, err = m.identify(ctx, i)
	case kindDiagnoseLive, kindDiagnoseCached:
		code, cached, err = m.diagnose(ctx, e.topic, i)
	case kindRemediate:
		code, err = m.remediate(ctx, i)
	case kindPoll:
		code, err = m.poll(ctx, i)
	}
	took := time.Since(start)
	nql, actions := directCalls(e, m.topicQ)
	m.mu.Lock()
	t := m.tally[e.kind]
	if t == nil {
		t = &kindTally{codes: map[int]int{}}
		m.tally[e.kind] = t
	}
	t.sent++
	t.codes[code]++
	if code/100 == 2 {
		t.ok = append(t.ok, took)
		if cached {
			t.fromCache++
		}
	}
	m.direct.nql += nql
	m.direct.actions += actions
	m.mu.Unlock()
	if code/100 == 2 {
		code = http.StatusOK
	}
	return code, err
}

func (m *mixDriver) identify(ctx context.Context, i int) (int, bool, error) {
	var a struct {
		Devices []json.RawMessage `json:"devices"`
		Source  string            `json:"source"`
	}
	code, err := m.c.do(ctx, http.MethodGet, "/api/v1/devices?username="+url.QueryEscape(m.users[i%len(m.users)]), nil, &a)
	return code, a.Source == "cache", err
}

func (m *mixDriver) diagnose(ctx context.Context, topic string, i int) (int, bool, error) {
	var d struct {
		Source string `json:"source"`
	}
	code, err := m.c.do(ctx, http.MethodPost, "/api/v1/topics/"+topic+"/diagnosis",
		map[string]any{"device": m.devices[i%len(m.devices)]}, &d)
	return code, d.Source == "cache", err
}

func (m *mixDriver) remediate(ctx context.Context, i int) (int, error) {
	var e benchExecution
	// Devices for remediations walk the list from its end, diagnoses from its start.
	device := m.devices[len(m.devices)-1-i%len(m.devices)]
	code, err := m.c.do(ctx, http.MethodPost, "/api/v1/remote-actions/executions",
		map[string]any{"remote_action": mixAction, "device": device, "reason": "dexbench mix"}, &e)
	if err == nil && e.ID != "" {
		m.mu.Lock()
		m.execs = append(m.execs, e.ID)
		m.mu.Unlock()
	}
	return code, err
}

// poll asks about one of the 20 latest executions, as the chatbot that started it
// would while it runs.
func (m *mixDriver) poll(ctx context.Context, i int) (int, error) {
	m.mu.Lock()
	n := len(m.execs)
	if n == 0 {
		m.mu.Unlock()
		return 0, fmt.Errorf("no execution to poll")
	}
	id := m.execs[n-1-i%min(n, 20)]
	m.mu.Unlock()
	var e benchExecution
	return m.c.do(ctx, http.MethodGet, "/api/v1/remote-actions/executions/"+url.PathEscape(id), nil, &e)
}

// mixTotals sums the tallies.
type mixTotals struct {
	sent, answered2xx, tooMany, serverErrors, noAnswer, otherErrors int
}

func (m *mixDriver) totals() mixTotals {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t mixTotals
	for _, k := range m.tally {
		t.sent += k.sent
		for code, n := range k.codes {
			switch {
			case code == 0:
				t.noAnswer += n
			case code/100 == 2:
				t.answered2xx += n
			case code == http.StatusTooManyRequests:
				t.tooMany += n
			case code >= 500:
				t.serverErrors += n
			default:
				t.otherErrors += n
			}
		}
	}
	return t
}

// kindSummary is one kind's answers and latencies, for the table.
func (m *mixDriver) kindSummary(kind string) (answers, latency string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tally[kind]
	if t == nil {
		return "none sent", "-"
	}
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(t.codes)) {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "no answer"
		}
		codes = append(codes, fmt.Sprintf("%d× %s", t.codes[c], label))
	}
	answers = fmt.Sprintf("%d sent: %s", t.sent, strings.Join(codes, ", "))
	if kind == kindIdentify || kind == kindDiagnoseCached {
		answers += fmt.Sprintf(", %d from the cache", t.fromCache)
	}
	r := loadResult{ok: slices.Sorted(slices.Values(t.ok))}
	return answers, "p50 " + ms(r.percentile(0.5)) + ", p99 " + ms(r.percentile(0.99))
}

// directTotals is what the chatbot calling Nexthink itself would have made for the
// requests sent so far.
func (m *mixDriver) directTotals() (nql, actions int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.direct.nql, m.direct.actions
}
