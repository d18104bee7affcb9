package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dexbridge/dexbridge/internal/topic"
)

// mixStack is what the mix scenario and the soak run against: nxsim (env.Fleet
// devices, env.Latency per call), a fresh schema, one `dexbridge run` process (every
// service, the embedded NATS, the default limits) with its cache loaded, and a mix
// driver holding an API key that may identify, diagnose and remediate.
type mixStack struct {
	*stack
	base   string
	proc   *exec.Cmd // the dexbridge run process
	stop   func()    // stops it (SIGTERM, then wait)
	driver *mixDriver
}

// mixCacheRate is MAX_CACHE_REQUESTS_PER_SECOND in the mix: the default.
const mixCacheRate = 500

func startMixStack(ctx context.Context, env Env) (_ *mixStack, err error) {
	st := &mixStack{stack: &stack{}}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	topics, err := topic.FilesIn(env.Root).Load()
	if err != nil {
		return nil, err
	}
	queries := map[string]int{}
	for _, p := range topics.Topics() {
		queries[p.ID()] = len(p.Queries())
	}
	if st.stack, err = startStack(ctx, env, env.Fleet, mixCacheRate); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "discovery of %d devices\n", env.Fleet)
	if err := st.dep.discover(ctx, env); err != nil {
		return nil, err
	}
	key, err := st.dep.apiKey(ctx, env, "read,diagnose,remediate")
	if err != nil {
		return nil, err
	}
	rows, _ := st.db.pool.Query(ctx, `SELECT name FROM users ORDER BY md5(name) LIMIT 5000`)
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(users) == 0 {
		return nil, fmt.Errorf("users in the cache: %d, %v", len(users), err)
	}
	rows, _ = st.db.pool.Query(ctx, `SELECT name FROM devices WHERE instance = 'eu' AND platform = 'Windows'
		AND name LIKE 'EU-%' AND last_seen > now() - interval '50 minutes' ORDER BY md5(name) LIMIT 2000`)
	devices, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(devices) < 100 {
		return nil, fmt.Errorf("online Windows devices in the cache: %d, %v", len(devices), err)
	}
	st.base = "http://" + st.dep.listen
	// `dexbridge run`: every service in one process.
	if st.stop, st.proc, err = st.dep.serve(ctx, env, st.base); err != nil {
		return nil, err
	}
	c := &chatbot{base: st.base, key: key, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}}
	st.driver = newMixDriver(c, users, devices, queries)
	return st, nil
}

func (st *mixStack) close() {
	if st.stop != nil {
		st.stop()
	}
	if st.stack != nil {
		st.stack.close()
	}
}

// upstreamCalls are the calls a tenant received, by family.
type upstreamCalls struct {
	nql, actions, tokens, other int64
}

func (u upstreamCalls) total() int64 { return u.nql + u.actions + u.tokens }

// upstream reads nxsim's counters of the tenant.
func (s *sim) upstream(ctx context.Context, tenant string) (upstreamCalls, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.tenant(tenant)+"/_nxsim/counters", nil)
	if err != nil {
		return upstreamCalls{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return upstreamCalls{}, err
	}
	defer resp.Body.Close()
	var c struct {
		Endpoints map[string]int64 `json:"endpoints"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return upstreamCalls{}, fmt.Errorf("nxsim counters: %w", err)
	}
	var u upstreamCalls
	for endpoint, n := range c.Endpoints {
		switch endpoint {
		case "POST /api/v1/nql/execute", "POST /api/v2/nql/execute":
			u.nql += n
		case "POST /api/v1/act/execute", "GET /api/v1/act/remote-action", "GET /api/v1/act/remote-action/details":
			u.actions += n
		case "POST /oauth2/default/v1/token":
			u.tokens += n
		default: // exports and their files: discovery's, not the chatbots'
			u.other += n
		}
	}
	return u, nil
}
