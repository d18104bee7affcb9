package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sim is an nxsim child process.
type sim struct {
	cmd *exec.Cmd
	url string
}

// startSim runs `nxsim -size n` on a free port, with env.Latency added to every
// Nexthink API call, and waits until it answers.
func startSim(ctx context.Context, env Env, n int, args ...string) (*sim, error) {
	all := append([]string{"-addr", "127.0.0.1:0", "-size", fmt.Sprint(n), "-topics", "topics",
		"-queries", "config/queries.yaml", "-log-level", "info", "-latency", env.Latency.String()}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(env.Bin, "nxsim"), all...)
	cmd.Dir = env.Root
	cmd.Stderr = env.Log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nxsim: %w", err)
	}
	s := &sim{cmd: cmd}
	addr := make(chan string, 1)
	ended := make(chan struct{}) // its output ended: it exited
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "nxsim listening" {
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-ended:
		s.stop()
		return nil, errors.New("nxsim exited before it listened (its error is in the log above)")
	case <-time.After(5 * time.Minute):
		s.stop()
		return nil, errors.New("nxsim did not start listening")
	}
	return s, waitHTTP(ctx, s.url+"/_nxsim/healthz", time.Minute)
}

// tenant is the base URL of a tenant.
func (s *sim) tenant(name string) string { return s.url + "/tenants/" + name }

func (s *sim) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

// control calls nxsim's control API.
func (s *sim) control(ctx context.Context, tenant, method, path string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.tenant(tenant)+path, strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("nxsim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return nil
}

func waitHTTP(ctx context.Context, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", u, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// database is a fresh schema for one scenario, dropped by drop.
type database struct {
	url  string
	pool *pgxpool.Pool
	drop func()
}

func newDatabase(ctx context.Context, env Env) (*database, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("bench database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, err
	}
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		return nil, errors.New("bench database: not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return nil, err
	}
	return &database{url: u.String(), pool: pool, drop: func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), env.DatabaseURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}}, nil
}

// freePort is a port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stack is what a scenario runs against: nxsim, a fresh schema and a dexbridge
// configuration pointing at both.
type stack struct {
	sim *sim
	db  *database
	dep *deployment
}

// startStack starts nxsim with n devices (and simArgs), creates the schema and
// writes the configuration with MAX_CACHE_REQUESTS_PER_SECOND at cacheRate.
func startStack(ctx context.Context, env Env, n int, cacheRate float64, simArgs ...string) (_ *stack, err error) {
	st := &stack{}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	if st.sim, err = startSim(ctx, env, n, simArgs...); err != nil {
		return nil, err
	}
	if st.db, err = newDatabase(ctx, env); err != nil {
		return nil, err
	}
	if st.dep, err = newDeployment(env, st.sim, st.db, cacheRate); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *stack) close() {
	if st.dep != nil {
		st.dep.close()
	}
	if st.db != nil {
		st.db.drop()
	}
	if st.sim != nil {
		st.sim.stop()
	}
}

// deployment is a dexbridge configuration pointing at nxsim's eu tenant.
type deployment struct {
	dir, config string
	listen      string
	env         []string
}

func newDeployment(env Env, s *sim, db *database, cacheRate float64) (*deployment, error) {
	dir, err := os.MkdirTemp("", "dexbench-")
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &deployment{dir: dir, config: filepath.Join(dir, "dexbridge.yaml"), listen: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	cfg := fmt.Sprintf(`log_level: warn
data_dir: %s
listen: %s
nats:
  listen: 127.0.0.1:%d
instances:
  - name: eu
    api_url: %s
    token_url: %s
`, filepath.Join(dir, "data"), d.listen, natsPort, s.tenant("eu"), s.tenant("eu"))
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	d.env = append(os.Environ(), "DATABASE_URL="+db.url, "NEXTHINK_EU_CLIENT_ID=eu-client",
		"NEXTHINK_EU_CLIENT_SECRET=eu-client-secret", fmt.Sprintf("MAX_CACHE_REQUESTS_PER_SECOND=%g", cacheRate),
		"NATS_URL=", "DEXBRIDGE_CONFIG="+d.config)
	return d, nil
}

func (d *deployment) close() { _ = os.RemoveAll(d.dir) }

// discover runs `dexbridge discover eu`: the cache holds the tenant's fleet after it.
func (d *deployment) discover(ctx context.Context, env Env) error {
	var out bytes.Buffer
	cmd := d.command(ctx, env, "discover", "eu")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dexbridge discover: %w: %s", err, out.String())
	}
	return nil
}

// apiKey creates an API key with the comma-separated scopes and returns it.
func (d *deployment) apiKey(ctx context.Context, env Env, scopes string) (string, error) {
	var out bytes.Buffer
	cmd := d.command(ctx, env, "apikey", "create", "-name", "dexbench", "-scopes", scopes, "-q")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apikey: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// command is a dexbridge child process of the deployment (DEXBRIDGE_CONFIG names
// its configuration).
func (d *deployment) command(ctx context.Context, env Env, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(env.Bin, "dexbridge"), args...)
	cmd.Dir = env.Root
	cmd.Env = d.env
	cmd.Stderr = env.Log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	return cmd
}

// peakRSS is the peak resident set of a finished process, in bytes.
func peakRSS(cmd *exec.Cmd) int64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024 // kilobytes on Linux
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
