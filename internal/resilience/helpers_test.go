// Package resilience_test holds dexbridge's resilience tests (issue 10): whole
// processes, or real processes of the binary, against real NATS and PostgreSQL and
// nxsim, while a worker is killed, NATS restarts, PostgreSQL goes away or the tenant
// misbehaves. Each asserts that no accepted request or event is lost, that every
// request gets an answer (a success, or a clean 503/504 problem) in bounded time,
// and that service resumes on its own.
package resilience_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// requestBound is the longest any request may take in these tests: far below the
// 30 s request timeout, which a request lost with a worker used to wait for.
const requestBound = 10 * time.Second

// testConfig is a process configuration on the test's NATS subject prefix and
// PostgreSQL schema, with the repository's topics and an nxsim tenant eu.
func testConfig(t *testing.T, sim *nxsim.Instance, natsURL, dbURL string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NATS.URL = natsURL
	cfg.NATS.SubjectPrefix = testenv.Prefix(t)
	cfg.DatabaseURL = config.Secret(dbURL)
	root := testenv.RepoRoot(t)
	cfg.TopicsDir = filepath.Join(root, "topics")
	cfg.RemoteActionsFile = filepath.Join(root, "config", "remote_actions.yaml")
	cfg.QueriesFile = filepath.Join(root, "config", "queries.yaml")
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
	// Out of the way: these tests are about failures, not about the limits.
	cfg.Limits = config.Limits{CacheRequestsPerSecond: 100000, EngineRequestsPerSecond: 100000, PortalRequestsPerSecond: 100000}
	if sim != nil {
		cfg.Instances = discoverytest.Config(sim, "eu").Instances
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fillCache migrates the schema at dbURL and discovers tenant eu into it.
func fillCache(t *testing.T, sim *nxsim.Instance, dbURL string) {
	t.Helper()
	pool := testenv.Migrated(t, dbURL)
	defer pool.Close()
	db := store.New(pool)
	cfg := discoverytest.Config(sim, "eu")
	set := discoverytest.Instances(t, cfg, db, nil)
	discoverytest.Discover(t, discoverytest.Discoverer(t, cfg, db, set, nil), "eu")
}

// apiKey makes a key with every scope in the schema at dbURL (migrated).
func apiKey(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	pool := testenv.Migrated(t, dbURL)
	defer pool.Close()
	secret, _, err := auth.NewKeys(store.New(pool)).Create(ctx, auth.NewKey{Name: "resilience",
		Scopes: []string{"read", "diagnose", "remediate", "admin"}, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// startProcess runs app.Run in this test binary (the whole process, as `dexbridge
// run` assembles it) and returns the ingress base URL ("" without an ingress) and a
// stop function that returns Run's error; the process stops when t ends at the
// latest.
func startProcess(t *testing.T, cfg config.Config, services ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan app.Ready, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- app.Run(ctx, app.Options{Config: cfg, Services: services, Log: logging.Discard(), Version: "0.0.0-test",
			OnReady: func(r app.Ready) { readyc <- r }})
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("process %v did not stop within 30s", services)
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop %v: %v", services, err)
		}
	})
	select {
	case r := <-readyc:
		if r.IngressAddr == nil {
			return "", stop
		}
		return "http://" + r.IngressAddr.String(), stop
	case err := <-errc:
		t.Fatalf("run %v: %v", services, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("process %v not ready after 60s", services)
	}
	return "", stop
}

// outcome is what a chatbot got for one request.
type outcome struct {
	what       string // method and path
	status     int
	code       string // the problem's code, for errors
	problem    bool   // the body is an application/problem+json document with a code
	retryAfter string
	start      time.Time
	took       time.Duration
	err        error // no HTTP answer at all
	body       []byte
	// expect are the statuses that answer this request when all is well (200 when
	// empty).
	expect []int
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%s: %v after %s", o.what, o.err, o.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: %d %s after %s", o.what, o.status, o.code, o.took.Round(time.Millisecond))
}

// clean reports whether o is what a chatbot may get during a failure: a success, or
// a 503 (with Retry-After) or 504 problem document, within requestBound.
func (o outcome) clean() bool {
	if o.err != nil || o.took > requestBound {
		return false
	}
	if o.success() {
		return true
	}
	switch o.status {
	case http.StatusServiceUnavailable:
		return o.problem && o.retryAfter != ""
	case http.StatusGatewayTimeout:
		return o.problem
	}
	return false
}

// client makes chatbot requests with an API key.
type client struct {
	base, key string
	http      *http.Client
}

func newClient(base, key string) *client {
	// The client's own timeout is only a backstop: outcomes are checked against
	// requestBound, which is shorter.
	return &client{base: base, key: key, http: &http.Client{Timeout: 60 * time.Second}}
}

func (c *client) do(method, path, body string) outcome {
	o := outcome{what: method + " " + path}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		o.err = err
		return o
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	return c.send(req, o)
}

// send sends req and fills in o.
func (c *client) send(req *http.Request, o outcome) outcome {
	start := time.Now()
	o.start = start
	resp, err := c.http.Do(req)
	if err != nil {
		o.err, o.took = err, time.Since(start)
		return o
	}
	o.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	o.took = time.Since(start)
	if err != nil {
		o.err = err
		return o
	}
	o.status, o.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == problem.ContentType {
		var doc problem.Document
		if json.Unmarshal(o.body, &doc) == nil && doc.Code != "" && doc.Status == resp.StatusCode {
			o.problem, o.code = true, string(doc.Code)
		}
	}
	return o
}

// decode reads o's JSON body into v.
func (o outcome) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(o.body, v); err != nil {
		t.Fatalf("%s: decode %s: %v", o, o.body, err)
	}
}

// load is chatbots sending requests in a loop until stopped, every outcome kept.
type load struct {
	mu       sync.Mutex
	outcomes []outcome
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startLoad runs n chatbots; the k-th request of chatbot i is next(i, k).
func startLoad(t *testing.T, n int, next func(i, k int) outcome) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	for i := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for k := 0; ; k++ {
				select {
				case <-l.stop:
					return
				default:
				}
				o := next(i, k)
				l.mu.Lock()
				l.outcomes = append(l.outcomes, o)
				l.mu.Unlock()
				if o.status == http.StatusServiceUnavailable || o.status == http.StatusTooManyRequests {
					// A chatbot told to come back later pauses (less than Retry-After
					// says, to keep the test brief).
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// count is how many outcomes so far satisfy f.
func (l *load) count(f func(outcome) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.outcomes {
		if f(o) {
			n++
		}
	}
	return n
}

// finish stops the chatbots and returns every outcome.
func (l *load) finish() []outcome {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

// success reports whether o got the answer expected when all is well.
func (o outcome) success() bool {
	if len(o.expect) == 0 {
		return o.err == nil && o.status == http.StatusOK
	}
	return o.err == nil && slices.Contains(o.expect, o.status)
}

// spans reports whether the request was in flight at t.
func (o outcome) spans(t time.Time) bool { return o.start.Before(t) && o.start.Add(o.took).After(t) }

// summary counts outcomes by status and code, and gives the longest wait.
func summary(all []outcome) (map[string]int, time.Duration) {
	out := map[string]int{}
	var longest time.Duration
	for _, o := range all {
		k := fmt.Sprint(o.status)
		if o.err != nil {
			k = "no answer"
		} else if o.code != "" {
			k += " " + o.code
		}
		out[k]++
		longest = max(longest, o.took)
	}
	return out, longest
}

// checkClean fails t for every outcome that is not clean (at most a few listed).
func checkClean(t *testing.T, all []outcome) {
	t.Helper()
	bad := 0
	for _, o := range all {
		if !o.clean() {
			if bad < 5 {
				t.Errorf("unclean answer: %s %s", o, bytes.TrimSpace(o.body))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d requests got no clean answer within %s", bad, len(all), requestBound)
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// build compiles the dexbridge binary for t.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dexbridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dexbridge")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// proc is a dexbridge process of the binary whose JSON log lines the test reads.
type proc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	done  chan struct{}
	err   error
}

// startProc starts `bin args...` in the repository root with env added.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.mu.Lock()
				p.lines = append(p.lines, m)
				p.mu.Unlock()
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// find returns the first log line with msg for which match holds (match may be nil).
func (p *proc) find(msg string, match func(map[string]any) bool) (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l["msg"] == msg && (match == nil || match(l)) {
			return l, true
		}
	}
	return nil, false
}

// wait waits for a log line with msg (and match) and returns it.
func (p *proc) wait(t *testing.T, msg string, within time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if l, ok := p.find(msg, match); ok {
			return l
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before logging %q: %v", p.name, msg, p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q log line after %s", p.name, msg, within)
		}
	}
}

// field is a log line's key as a string.
func field(l map[string]any, key string) string { return fmt.Sprint(l[key]) }

// processConfig writes the YAML file of the binary's processes: the subject prefix,
// the nxsim tenant eu (credentials come from env), limits out of the way, and extra.
func processConfig(t *testing.T, prefix string, sim *nxsim.Instance, extra string) (path string, env []string) {
	t.Helper()
	body := fmt.Sprintf(`listen: 127.0.0.1:0
metrics_listen: 127.0.0.1:0
log_level: debug
data_dir: %s
nats:
  subject_prefix: %s
limits:
  cache_requests_per_second: 100000
  engine_requests_per_second: 100000
  portal_requests_per_second: 100000
instances:
  - name: eu
    api_url: %s
    token_url: %s
%s`, t.TempDir(), prefix, sim.TenantURL("eu"), sim.TenantURL("eu"), extra)
	path = filepath.Join(t.TempDir(), "dexbridge.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, []string{"NEXTHINK_EU_CLIENT_ID=eu-client", "NEXTHINK_EU_CLIENT_SECRET=eu-client-secret"}
}
