// Package bench measures dexbridge against nxsim with named scenarios and prints one
// table: scenario, metric, dexbridge's figure, the baseline's (measured or computed in
// the same run) and, where the issue sets one, the target and whether it was met; the
// heading gives the machine's core count and the suite's wall time. Everything runs as
// it would in production: nxsim and dexbridge are separate processes (built
// binaries), talking HTTP, NATS (dexbridge's embedded server) and PostgreSQL, so each
// side's memory and CPU are its own. nxsim emulates a tenant of -fleet devices
// (100 000) and adds -latency (300 ms) to every Nexthink API call (token, NQL, export,
// Remote Actions), unless a scenario's "setup" row says otherwise.
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
//     same answer asked of nxsim's NQL API directly (#get_device_basic_infos), at its
//     own fixed rate (identify.go).
//   - webhooks: accepted webhooks per second (202 after the JetStream ack, embedded
//     NATS syncing every write) against bare JetStream publishes, the backlog processed
//     to signed callbacks, and webhook-to-callback latency at a fixed rate (webhooks.go).
//   - diagnosis: POST /api/v1/topics/{topic}/diagnosis for a topic the cache answers
//     and a live one, at fixed rates, against the chatbot asking nxsim's NQL API the
//     same queries directly; and the cached path's throughput with one and two topics
//     worker processes (diagnosis.go).
//   - remediation: NQL calls per minute that reach the instance with 1, 100 and 1000
//     pending executions, beside a naive one-query-per-execution poller in the same
//     window, and the latency from nxsim completing an execution to the chatbot's long
//     poll returning it (remediation.go).
//   - mix: upstream calls per 1000 chatbot requests of a realistic mix through
//     `dexbridge run`, counted at nxsim, against what a chatbot calling Nexthink
//     itself would make for the same requests (mix.go, mixscenario.go).
//   - retention: a million expired rows spread over every pruned table, loaded with
//     COPY, deleted by `dexbridge run pruner` while identification runs at a fixed
//     rate: identification's latency before and during pruning, rows pruned per
//     second, and the rows that had to stay (retention.go).
//   - cluster: the fault drill: three NATS nodes (TLS, token, replicas 3), two
//     ingresses and two processes of every worker under webhook and remediation load;
//     the WEBHOOKS stream leader's node and a worker process are killed with SIGKILL:
//     answers by kind, the longest gap without a 2xx, the time to the last failed
//     answer, and accepted webhooks and executions lost (cluster.go).
//   - v6-export-500k: the V6 driver's discovery export of 500 000 devices on two nxsim
//     Engines: the peak Go heap while the rows stream to a consumer, against the same
//     answers read whole and decoded (v6export.go).
//
// `dexbench soak` is not a scenario: it runs the mix against one `dexbridge run` for
// minutes and fails when memory or goroutines grow or a request gets no answer or a
// 5xx (soak.go).
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
	Target                                string // the target and whether it was met; "" when none
}

// Env is what scenarios run with.
type Env struct {
	Root        string        // repository root: topics/ and config/queries.yaml
	Bin         string        // directory holding the dexbridge and nxsim binaries
	DatabaseURL string        // a database where each scenario makes its own schema
	Fleet       int           // devices of nxsim's tenant, for every scenario but discovery
	Latency     time.Duration // added by nxsim to every Nexthink API call
	Duration    time.Duration // identify, diagnosis, webhooks: measurement time per path
	Rate        float64       // identify: offered requests per second through dexbridge
	// IdentifyDirectRate is the identify baseline's offered requests per second to
	// nxsim's NQL API.
	IdentifyDirectRate float64
	// DiagnosisRate is the offered diagnoses per second of the cached topic.
	DiagnosisRate float64
	DirectRate    float64 // diagnosis: offered live diagnoses and direct queries per second
	MixRate       float64 // mix: offered chatbot requests per second
	MixDuration   time.Duration
	// RetentionRows is how many expired rows the retention scenario loads;
	// RetentionRate the identifications per second it offers before and during
	// pruning.
	RetentionRows int
	RetentionRate float64
	// WebhooksConcurrency, when positive, sets webhooks.concurrency of the webhooks
	// scenario's deployment (else dexbridge's default).
	WebhooksConcurrency int
	Log                 io.Writer
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
		{"mix", mixScenario},             // mixscenario.go
		{"retention", retentionScenario}, // retention.go
		{"cluster", clusterScenario},     // cluster.go
		{"v6-export-500k", func(ctx context.Context, env Env) ([]Row, error) { return v6ExportScenario(ctx, env, 500_000) }}, // v6export.go
	}
}

// Main parses args, runs the chosen scenarios and prints the table to stdout;
// progress goes to stderr. `dexbench soak ...` runs the soak test instead (soak.go).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "soak" {
		return soakMain(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "nats-node" {
		return natsNodeMain(args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "markdown" {
		return markdownMain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("dexbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	only := fs.String("scenarios", strings.Join(names, ","), "comma-separated scenarios to run")
	jsonOut := fs.String("json", "", "also save the heading and table to this file, for `dexbench markdown`")
	env := Env{Log: stderr}
	commonFlags(fs, &env, getenv)
	fs.DurationVar(&env.Duration, "duration", 10*time.Second, "identify, diagnosis, webhooks: measurement time per path")
	fs.Float64Var(&env.Rate, "rate", 5000, "identify: offered requests per second through dexbridge")
	fs.Float64Var(&env.IdentifyDirectRate, "identify-direct-rate", 5, "identify: offered requests per second to nxsim's NQL API directly")
	fs.Float64Var(&env.DirectRate, "direct-rate", 20, "diagnosis: offered live diagnoses per second, and requests per second to nxsim directly")
	fs.Float64Var(&env.DiagnosisRate, "diagnosis-rate", 500, "diagnosis: offered diagnoses per second of the cached topic")
	fs.Float64Var(&env.MixRate, "mix-rate", 50, "mix: offered chatbot requests per second")
	fs.DurationVar(&env.MixDuration, "mix-duration", time.Minute, "mix: measurement time")
	fs.IntVar(&env.RetentionRows, "retention-rows", 1_000_000, "retention: expired rows loaded for the pruner")
	fs.IntVar(&env.WebhooksConcurrency, "webhooks-concurrency", 0, "webhooks: the worker's webhooks.concurrency (0: dexbridge's default)")
	fs.Float64Var(&env.RetentionRate, "retention-rate", 200, "retention: offered identifications per second before, during and after pruning")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := env.check(); err != nil {
		return err
	}
	want := strings.Split(*only, ",")
	for _, w := range want {
		if !slices.Contains(names, w) {
			return fmt.Errorf("no scenario %q (have %s)", w, strings.Join(names, ", "))
		}
	}
	suiteStart := time.Now()
	var rows []Row
	var failed []error
	for _, s := range Scenarios() {
		if !slices.Contains(want, s.Name) {
			continue
		}
		fmt.Fprintf(stderr, "== %s\n", s.Name)
		start := time.Now()
		got, err := s.Run(ctx, env)
		if err != nil {
			// The other scenarios still run and the table still prints: a run of
			// minutes is not lost to one failure, which the table and the exit
			// status say.
			fmt.Fprintf(stderr, "== %s failed: %v\n", s.Name, err)
			failed = append(failed, fmt.Errorf("%s: %w", s.Name, err))
			got = []Row{{Scenario: s.Name, Metric: "FAILED", Dexbridge: err.Error(), Baseline: "-"}}
		}
		took := time.Since(start).Round(time.Second)
		fmt.Fprintf(stderr, "== %s done in %s\n", s.Name, took)
		rows = append(rows, got...)
		rows = append(rows, Row{Scenario: s.Name, Metric: "scenario wall time", Dexbridge: took.String(), Baseline: "-"})
	}
	heading := fmt.Sprintf("dexbench on %s: %d cores (GOMAXPROCS %d), %s/%s; nxsim: %s devices, +%s per Nexthink API call, unless a setup row says otherwise; scenarios %s; suite wall time %s",
		hostname(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, thousands(int64(env.Fleet)), env.Latency,
		*only, time.Since(suiteStart).Round(time.Second))
	fmt.Fprintln(stdout, heading)
	if *jsonOut != "" {
		if err := saveResults(*jsonOut, Results{Heading: heading, Rows: rows}); err != nil {
			return err
		}
	}
	if err := printTable(stdout, rows); err != nil {
		return err
	}
	return errors.Join(failed...)
}

// commonFlags are the flags that bench and soak share.
func commonFlags(fs *flag.FlagSet, env *Env, getenv func(string) string) {
	fs.StringVar(&env.Bin, "bin", "bin", "directory of the dexbridge and nxsim binaries (make build)")
	fs.StringVar(&env.Root, "root", ".", "repository root")
	fs.StringVar(&env.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL database for the scenarios' schemas (DATABASE_URL)")
	fs.IntVar(&env.Fleet, "fleet", 100_000, "devices of nxsim's tenant (every scenario but discovery)")
	fs.DurationVar(&env.Latency, "latency", 300*time.Millisecond, "latency nxsim adds to every Nexthink API call")
}

// check validates the environment and finds the binaries.
func (env *Env) check() error {
	if env.DatabaseURL == "" {
		return errors.New("set -database-url or DATABASE_URL")
	}
	for _, b := range []string{"dexbridge", "nxsim", "dexbench"} {
		if _, err := os.Stat(filepath.Join(env.Bin, b)); err != nil {
			return fmt.Errorf("%s: build the binaries first (make build): %w", b, err)
		}
	}
	if env.Log == nil {
		env.Log = io.Discard
	}
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "this machine"
	}
	return h
}

func printTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tDEXBRIDGE\tBASELINE\tTARGET")
	for _, r := range rows {
		t := r.Target
		if t == "" {
			t = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Metric, r.Dexbridge, r.Baseline, t)
	}
	return tw.Flush()
}

// target says whether a figure met the goal.
func target(goal string, met bool) string {
	if met {
		return goal + ": met"
	}
	return goal + ": NOT met"
}

// setupRow says what a scenario ran against.
func setupRow(scenario string, env Env, devices int, dexbridge, notes string) Row {
	return Row{Scenario: scenario, Metric: "setup",
		Dexbridge: dexbridge,
		Baseline:  fmt.Sprintf("nxsim %s devices, +%s per API call%s", thousands(int64(devices)), env.Latency, notes)}
}

// thousands writes n with a space between groups of three digits: 100 000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
