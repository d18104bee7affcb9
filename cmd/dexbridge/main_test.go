package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dexbridge/dexbridge/internal/testenv"
)

// build compiles the binary once per test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dexbridge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// proc is a dexbridge process whose JSON log lines the test can wait for.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	done  chan error
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
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
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.mu.Lock()
				p.lines = append(p.lines, m)
				p.mu.Unlock()
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// field waits for a log line with msg and returns its key.
func (p *proc) field(t *testing.T, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if l["msg"] == msg {
				p.mu.Unlock()
				return fmt.Sprint(l[key])
			}
		}
		p.mu.Unlock()
		select {
		case err := <-p.done:
			t.Fatalf("process exited before logging %q: %v", msg, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q log line after 60s", msg)
	return ""
}

func writeConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dexbridge.yaml")
	body := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nnats:\n  listen: 127.0.0.1:0\n  subject_prefix: %s\n",
		t.TempDir(), testenv.Prefix(t))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecondTopicsProcessSharesTheLoad runs `dexbridge run` (embedded NATS) and a
// second process `dexbridge run topics` joined to it: both answer requests, and
// stopping the second under load loses none.
func TestSecondTopicsProcessSharesTheLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	dbEnv := "DATABASE_URL=" + testenv.PostgresURL(t)
	cfg := writeConfig(t)
	a := startProc(t, bin, []string{dbEnv}, "run", "-config", cfg)
	natsURL := a.field(t, "embedded nats started", "url")
	base := "http://" + a.field(t, "ingress listening", "addr")
	b := startProc(t, bin, []string{dbEnv, "NATS_URL=" + natsURL}, "run", "-config", cfg, "topics")
	b.field(t, "dexbridge starting", "services")
	// A process without the ingress still exposes metrics and readiness.
	adminBase := "http://" + b.field(t, "admin listening", "addr")
	for _, path := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get(adminBase + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("process b %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitInstances(t, nc, 2)

	keyCmd := exec.Command(bin, "apikey", "create", "-config", cfg, "-name", "load", "-q")
	keyCmd.Env = append(os.Environ(), dbEnv)
	keyOut, err := keyCmd.Output()
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	key := strings.TrimSpace(string(keyOut))

	client := &http.Client{Timeout: 10 * time.Second}
	get := func() error {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/topics", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"outlook"`) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	}
	for range 200 {
		if err := get(); err != nil {
			t.Fatal(err)
		}
	}
	counts := requestsPerInstance(t, nc)
	if len(counts) != 2 {
		t.Fatalf("instances reporting stats: got %d, want 2", len(counts))
	}
	for id, n := range counts {
		if n == 0 {
			t.Errorf("instance %s answered no request of 200; counts %v", id, counts)
		}
	}

	// Load from 8 clients; stop process b in the middle.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := get(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	testenv.Eventually(t, "300 answers", func() bool { return ok.Load() > 300 })
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-b.done; err != nil {
		t.Errorf("process b after SIGTERM: %v, want a clean exit", err)
	}
	before := ok.Load()
	testenv.Eventually(t, "300 more answers", func() bool { return ok.Load() > before+300 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("requests failed while a topics process stopped: %d of %d (first: %v)", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests served while process b stopped", ok.Load())

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-a.done; err != nil {
		t.Errorf("process a after SIGTERM: %v", err)
	}
}

func waitInstances(t *testing.T, nc *nats.Conn, want int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d topics instances", want), func() bool { return len(requestsPerInstance(t, nc)) >= want })
}

// requestsPerInstance asks every topics instance for its micro stats: the requests
// each has answered, by instance id.
func requestsPerInstance(t *testing.T, nc *nats.Conn) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range testenv.MicroStats(t, nc, "topics") {
		n := 0
		for _, e := range s.Endpoints {
			n += e.NumRequests
		}
		out[s.ID] = n
	}
	return out
}

func TestCheckExitsNonZeroNamingTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := build(t)
	run := func(env ...string) (int, string) {
		cmd := exec.Command(bin, "check")
		cmd.Dir = testenv.RepoRoot(t)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(); code != 0 {
		t.Errorf("check of the shipped config: exit %d: %s", code, out)
	}
	code, out := run("MAX_PORTAL_REQUESTS_PER_SECOND=-3")
	if code == 0 || !strings.Contains(out, "MAX_PORTAL_REQUESTS_PER_SECOND") {
		t.Errorf("check with a bad limit: exit %d, output %q; want non-zero naming the variable", code, out)
	}
	code, out = run("TOPICS_DIR=" + t.TempDir())
	if code == 0 || !strings.Contains(out, "topics") {
		t.Errorf("check with no topics: exit %d, output %q; want non-zero", code, out)
	}
}

// TestExitCodes: help exits 0 wherever -h is, a command line that cannot be
// understood 2, a failure 1; the API key of the environment appears in none of
// their outputs.
func TestExitCodes(t *testing.T) {
	bin := build(t)
	const key = "dxb_EXITCODESexitcodesEXITCODESexitcodes0001"
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, 0},
		{[]string{"diagnose", "-h"}, 0},
		{[]string{"diagnose", "outlook", "--help", "-device", "PC-1"}, 0},
		{[]string{"remediate", "outlook", "fix", "-h"}, 0},
		{[]string{"apikey", "create", "-h"}, 0},
		{[]string{"check", "-h"}, 0},
		{[]string{"version", "-o", "json"}, 0},
		{[]string{}, 2},
		{[]string{"nope"}, 2},
		{[]string{"diagnose", "-nope"}, 2},
		{[]string{"diagnose", "outlook"}, 2},
		{[]string{"topics", "-o", "xml"}, 2},
		{[]string{"topics", "-url", "http://127.0.0.1:1", "-v"}, 1},
	} {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = append(os.Environ(), "DEXBRIDGE_API_KEY="+key)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("dexbridge %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), code, tt.code, out)
		}
		if strings.Contains(string(out), key) || strings.Contains(string(out), key[:16]) {
			t.Errorf("dexbridge %s printed the key:\n%s", strings.Join(tt.args, " "), out)
		}
	}
}
