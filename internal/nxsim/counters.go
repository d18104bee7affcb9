package nxsim

import (
	"maps"
	"strconv"
	"sync"
)

// counters counts every call a tenant receives.
type counters struct {
	mu        sync.Mutex
	total     int64
	endpoints map[string]int64            // "POST /api/v2/nql/execute"
	responses map[string]map[string]int64 // endpoint -> status -> count
	queries   map[string]int64            // "#get_device_basic_infos"
	actions   map[string]int64            // "#set_outlook_online"
}

// Counters is the control API's view of the counters.
type Counters struct {
	Total         int64                       `json:"total"`
	Endpoints     map[string]int64            `json:"endpoints"`
	Responses     map[string]map[string]int64 `json:"responses"`
	Queries       map[string]int64            `json:"queries"`
	RemoteActions map[string]int64            `json:"remote_actions"`
}

func newCounters() *counters {
	c := &counters{}
	c.reset()
	return c
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total = 0
	c.endpoints = map[string]int64{}
	c.responses = map[string]map[string]int64{}
	c.queries = map[string]int64{}
	c.actions = map[string]int64{}
}

func (c *counters) call(endpoint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.endpoints[endpoint]++
}

func (c *counters) response(endpoint string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.responses[endpoint]
	if m == nil {
		m = map[string]int64{}
		c.responses[endpoint] = m
	}
	m[strconv.Itoa(status)]++
}

func (c *counters) query(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries[id]++
}

func (c *counters) action(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actions[id]++
}

func (c *counters) snapshot() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := make(map[string]map[string]int64, len(c.responses))
	for k, v := range c.responses {
		resp[k] = maps.Clone(v)
	}
	return Counters{
		Total: c.total, Endpoints: maps.Clone(c.endpoints), Responses: resp,
		Queries: maps.Clone(c.queries), RemoteActions: maps.Clone(c.actions),
	}
}
