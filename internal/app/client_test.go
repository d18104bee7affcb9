package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
	"github.com/dexbridge/dexbridge/internal/cli"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/discovery/discoverytest"
)

// TestCommandLineAndExampleChatbot drives a whole deployment against nxsim the way
// people without a bot do (the dexbridge client commands) and the way the example
// chatbot in examples/ does, so neither can drift from the API.
func TestCommandLineAndExampleChatbot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example chatbot")
	}
	sim := discoverytest.StartSim(t, func(c *nxsim.Config) {
		c.Executions = nxsim.ExecutionTiming{Pending: 100 * time.Millisecond, Running: 200 * time.Millisecond, Tick: 10 * time.Millisecond}
	})
	cfg := testConfig(t)
	cfg.Instances = discoverytest.Config(sim, "eu").Instances
	cfg.Executions.PollInterval = config.Duration(200 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, cfg, "ingress", "devices", "discovery", "topics", "remoteactions", "poller")
	key := apiKey(t, cfg)
	ctx := context.Background()
	c := apiclient.New(base, key)
	waitUntil(t, func() bool {
		d, err := c.Identify(ctx, events.KeyDeviceName, "PC-HEALTHY")
		return err == nil && d.Source == events.SourceCache
	})

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := cli.Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut, Version: "test"}
		if err := cli.Run(ctx, append(args, "-url", base, "-key", key), env); err != nil {
			t.Fatalf("dexbridge %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"devices", "-user", "jdoe"}, []string{"PC-OUTLOOK-OFFLINE", "MAC-HEALTHY", "source: cache"}},
		{[]string{"topics"}, []string{"outlook", "slow_pc", "Microsoft Outlook issues"}},
		{[]string{"diagnose", "outlook", "-device", "PC-OUTLOOK-OFFLINE"}, []string{"Outlook is working offline", "found", "set_outlook_online"}},
		{[]string{"remediate", "outlook", "set_outlook_online", "-device", "PC-OUTLOOK-OFFLINE", "-wait", "1m"}, []string{": success"}},
		{[]string{"diagnose", "outlook", "-device", "PC-OUTLOOK-OFFLINE", "-refresh"}, []string{"Outlook is working offline", "clear"}},
	} {
		out := run(tt.args...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("dexbridge %s: output lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
	}

	// The example chatbot, built and run as a bot builder would.
	bin := filepath.Join(t.TempDir(), "chatbot")
	build := exec.Command("go", "build", "-o", bin, "./examples/chatbot")
	build.Dir = testenv.RepoRoot(t)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build the example: %v", err)
	}
	out, err := exec.Command(bin, "-url", base, "-key", key, "-user", "hjordan", "-say", "Outlook keeps crashing", "-yes").CombinedOutput()
	if err != nil {
		t.Fatalf("example chatbot: %v\n%s", err, out)
	}
	for _, w := range []string{"PC-OUTLOOK-PLUGIN", "I found this: An Outlook add-in crashed", "Done: Set Outlook plugins", "All good now"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("example conversation lacks %q:\n%s", w, out)
		}
	}

	// What an operator sees of all this.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{
		`dexbridge_upstream_calls_total\{endpoint="nql.execute",instance="eu",status="200"\} [1-9]`,
		`dexbridge_upstream_calls_total\{endpoint="act.execute",instance="eu",status="200"\} [1-9]`,
		`dexbridge_discovery_runs_total\{instance="eu",outcome="success"\} 1`,
		`dexbridge_discovery_rows_total\{instance="eu",kind="devices"\} [1-9]`,
		`dexbridge_cache_lookups_total\{kind="identify",result="hit"\} [1-9]`,
		`dexbridge_cache_lookups_total\{kind="nql",result="miss"\} [1-9]`,
		`dexbridge_pending_executions\{instance="eu"\} 0`,
		`dexbridge_nats_handler_duration_seconds_count\{outcome="ok",subject="` + cfg.NATS.SubjectPrefix + `.req.topics.diagnose"\} [1-9]`,
	} {
		if !regexp.MustCompile(re).Match(raw) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}
}
