// Package bench measures dexbridge against nxsim with named scenarios and prints one
// table: scenario, metric, dexbridge's figure, the baseline's, and the machine's core
// count. Everything runs as it would in production: nxsim and dexbridge are separate
// processes (built binaries), talking HTTP, NATS and PostgreSQL, so each side's
// memory and CPU are its own.
//
// Scenarios:
//
//   - discovery-100k, discovery-500k: `dexbridge discover` of one instance of that many
//     devices into an empty cache: wall time, cache rows per second and the peak RSS of
//     the dexbridge process. Baseline: the same five exports downloaded and decoded by
//     the Nexthink client without loading them anywhere (what the tenant alone costs).
//   - identify: GET /api/v1/devices?username= through the ingress, NATS, the devices
//     worker and PostgreSQL at a fixed arrival rate (open loop: latency counts from the
//     time a request was due, so a slow server cannot hide its queue); baseline: the
//     same answer asked of nxsim's NQL API directly (#get_device_basic_infos) with
//     nxsim's latency set to 300 ms, at its own fixed rate.
//   - webhooks: accepted webhooks per second (202 after the JetStream ack, embedded
//     NATS syncing every write) against bare JetStream publishes, the backlog processed
//     to signed callbacks, and webhook-to-callback latency at a fixed rate (webhooks.go).
//   - diagnosis: POST /api/v1/topics/{topic}/diagnosis for a topic the cache answers
//     and a live one, at fixed rates, against the chatbot asking nxsim's NQL API the
//     same queries directly with 300 ms of latency; and the cached path's throughput
//     with one and two topics worker processes (diagnosis.go).
//   - remediation: NQL calls per minute that reach the instance with 1, 100 and 1000
//     pending executions, beside a naive one-query-per-execution poller in the same
//     window, and the latency from nxsim completing an execution to the chatbot's long
//     poll returning it (remediation.go).
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the result table.
type Row struct {
	Scenario, Metric, Dexbridge, Baseline string
}

// Env is what scenarios run with.
type Env struct {
	Root        string // repository root: topics/ and config/queries.yaml
	Bin         string // directory holding the dexbridge and nxsim binaries
	DatabaseURL string // a database where each scenario makes its own schema
	Duration    time.Duration
	Rate        float64 // identify: offered requests per second through dexbridge
	// DiagnosisRate is the offered diagnoses per second of the cached topic.
	DiagnosisRate float64
	DirectRate    float64 // identify: offered requests per second to nxsim directly
	Log           io.Writer
}

// Scenario is a named measurement.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, env Env) ([]Row, error)
}

// Scenarios lists every scenario in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{"discovery-100k", func(ctx context.Context, env Env) ([]Row, error) { return discoveryScenario(ctx, env, 100_000) }},
		{"discovery-500k", func(ctx context.Context, env Env) ([]Row, error) { return discoveryScenario(ctx, env, 500_000) }},
		{"identify", identifyScenario},
		{"webhooks", webhooksScenario},   // webhooks.go
		{"diagnosis", diagnosisScenario}, // diagnosis.go
		{"remediation", remediationScenario},
	}
}

// Main parses args, runs the chosen scenarios and prints the table to stdout;
// progress goes to stderr.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dexbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	only := fs.String("scenarios", strings.Join(names, ","), "comma-separated scenarios to run")
	bin := fs.String("bin", "bin", "directory of the dexbridge and nxsim binaries (make build)")
	root := fs.String("root", ".", "repository root")
	db := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL database for the scenarios' schemas (DATABASE_URL)")
	duration := fs.Duration("duration", 10*time.Second, "identify: measurement time per path")
	rate := fs.Float64("rate", 5000, "identify: offered requests per second through dexbridge")
	direct := fs.Float64("direct-rate", 20, "identify, diagnosis: offered requests per second to nxsim directly (and of the live diagnosis)")
	diagnosisRate := fs.Float64("diagnosis-rate", 500, "diagnosis: offered diagnoses per second of the cached topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" {
		return errors.New("set -database-url or DATABASE_URL")
	}
	env := Env{Root: *root, Bin: *bin, DatabaseURL: *db, Duration: *duration, Rate: *rate, DirectRate: *direct, DiagnosisRate: *diagnosisRate, Log: stderr}
	for _, b := range []string{"dexbridge", "nxsim"} {
		if _, err := os.Stat(filepath.Join(env.Bin, b)); err != nil {
			return fmt.Errorf("%s: build the binaries first (make build): %w", b, err)
		}
	}
	want := strings.Split(*only, ",")
	var rows []Row
	for _, s := range Scenarios() {
		if !slices.Contains(want, s.Name) {
			continue
		}
		fmt.Fprintf(stderr, "== %s\n", s.Name)
		start := time.Now()
		got, err := s.Run(ctx, env)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		fmt.Fprintf(stderr, "== %s done in %s\n", s.Name, time.Since(start).Round(time.Second))
		rows = append(rows, got...)
	}
	return printTable(stdout, rows)
}

func printTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tDEXBRIDGE\tBASELINE\tCORES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Scenario, r.Metric, r.Dexbridge, r.Baseline, runtime.NumCPU())
	}
	return tw.Flush()
}
