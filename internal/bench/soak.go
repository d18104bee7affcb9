package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// soakMain is `dexbench soak`: the realistic mix (mix.go) against one `dexbridge run`
// process and nxsim for -duration, sampling the process's goroutines and resident
// memory from its /metrics every -interval. It fails when, after the warm-up, either
// grew from the first third of the run to the last beyond soakLimits, when a request
// got no answer or a 5xx, or when the process did not stop cleanly. It prints the
// samples and the verdict to stdout.
func soakMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dexbench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := Env{Log: stderr}
	commonFlags(fs, &env, getenv)
	duration := fs.Duration("duration", 3*time.Minute, "how long the mix runs (SOAK_DURATION in make soak)")
	fs.Float64Var(&env.MixRate, "rate", 50, "offered chatbot requests per second")
	interval := fs.Duration("interval", 5*time.Second, "time between samples")
	warmup := fs.Duration("warmup", 0, "samples ignored at the start (default: a sixth of -duration, at most 1m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := env.check(); err != nil {
		return err
	}
	if *warmup == 0 {
		*warmup = min(*duration/6, time.Minute).Round(time.Second)
	}
	st, err := startMixStack(ctx, env)
	if err != nil {
		return err
	}
	defer st.close()
	m := st.driver
	if err := m.seed(ctx, 5); err != nil {
		return err
	}
	metricsURL := st.base + "/metrics"
	scrape := &http.Client{Timeout: 5 * time.Second}

	fmt.Fprintf(env.Log, "soak: the mix at %g/s for %s, a sample every %s\n", env.MixRate, *duration, *interval)
	loadDone := make(chan loadResult, 1)
	start := time.Now()
	go func() { loadDone <- openLoop(ctx, env.MixRate, *duration, m.do) }()
	var samples []soakSample
	var scrapeErrs []error
	sample := func() {
		s, err := scrapeProcess(ctx, scrape, metricsURL)
		if err != nil {
			scrapeErrs = append(scrapeErrs, fmt.Errorf("at %s: %w", time.Since(start).Round(time.Second), err))
			return
		}
		s.at, s.answered = time.Since(start), m.totals().sent
		samples = append(samples, s)
	}
	sample()
	tick := time.NewTicker(*interval)
	var res loadResult
wait:
	for {
		select {
		case res = <-loadDone:
			break wait
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	sample()
	st.stop()
	exit := st.proc.ProcessState.ExitCode()

	// The report.
	fmt.Fprintf(stdout, "dexbench soak: `dexbridge run` against nxsim (%s devices, +%s per API call), the mix at %g req/s for %s, warm-up %s\n",
		thousands(int64(env.Fleet)), env.Latency, env.MixRate, *duration, *warmup)
	fmt.Fprintf(stdout, "mix: %s\n\n", describeMix(realisticMix()))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "T\tGOROUTINES\tRSS\tHEAP IN USE\tANSWERED")
	for _, s := range samples {
		mark := ""
		if s.at < *warmup {
			mark = " (warm-up)"
		}
		fmt.Fprintf(tw, "%s%s\t%.0f\t%.1f MiB\t%.1f MiB\t%d\n", s.at.Round(time.Second), mark, s.goroutines, s.rss/(1<<20), s.heap/(1<<20), s.answered)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)

	var failures []string
	for _, lim := range soakLimits() {
		v, err := growth(samples, *warmup, lim)
		if err != nil {
			return err
		}
		verdict := "flat"
		if v.grew {
			verdict = "GREW"
			failures = append(failures, fmt.Sprintf("%s grew from %s to %s (limit %s)", lim.name, lim.format(v.first), lim.format(v.last), lim.format(v.limit)))
		}
		fmt.Fprintf(stdout, "%-10s median of the first third %s, of the last third %s (limit %s: +%.0f%% + %s): %s\n",
			lim.name, lim.format(v.first), lim.format(v.last), lim.format(v.limit), lim.ratio*100, lim.format(lim.abs), verdict)
	}
	t := m.totals()
	fmt.Fprintf(stdout, "answers    %d sent: %d 2xx, %d 429, %d other 4xx, %d 5xx, %d without an answer\n",
		t.sent, t.answered2xx, t.tooMany, t.otherErrors, t.serverErrors, t.noAnswer)
	for _, k := range mixKinds(realisticMix()) {
		answers, latency := m.kindSummary(k.kind)
		fmt.Fprintf(stdout, "           %s: %s; %s\n", k.kind, answers, latency)
	}
	if t.serverErrors > 0 || t.noAnswer > 0 {
		failures = append(failures, fmt.Sprintf("%d requests got a 5xx and %d no answer", t.serverErrors, t.noAnswer))
	}
	if t.sent != res.sent {
		failures = append(failures, fmt.Sprintf("%d requests due, %d tallied", res.sent, t.sent))
	}
	if len(scrapeErrs) > 0 {
		failures = append(failures, fmt.Sprintf("%d scrapes of %s failed: %v", len(scrapeErrs), metricsURL, errors.Join(scrapeErrs...)))
	}
	fmt.Fprintf(stdout, "stop       dexbridge run exited with status %d after SIGTERM\n", exit)
	if exit != 0 {
		failures = append(failures, fmt.Sprintf("dexbridge run exited with status %d after SIGTERM", exit))
	}
	if len(failures) > 0 {
		fmt.Fprintf(stdout, "\nsoak FAILED: %s\n", strings.Join(failures, "; "))
		return fmt.Errorf("soak failed: %s", strings.Join(failures, "; "))
	}
	fmt.Fprintf(stdout, "\nsoak passed: goroutines and memory flat, every request answered without a 5xx\n")
	return nil
}
