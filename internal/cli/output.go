package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// What every command shares in how it prints: a table for people or JSON for
// programs (-o), times in the local zone or UTC (-utc) and always with their zone,
// terminal effects only on a terminal, and never the API key.

// output is how a command prints its answer.
type output struct {
	format *string
	json   *bool // -json, the older spelling of -o json
	utc    *bool
	env    Env
}

// outputFlags adds -o, -json and -utc to fs.
func outputFlags(fs *flag.FlagSet, env Env) *output {
	return &output{
		format: fs.String("o", "table", "output: table (for people) or json (for programs)"),
		json:   fs.Bool("json", false, "same as -o json"),
		utc:    fs.Bool("utc", false, "show times in UTC rather than the local zone"),
		env:    env,
	}
}

func (o *output) check() error {
	switch *o.format {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("%w: -o: want table or json, got %q", ErrUsage, *o.format)
}

func (o *output) asJSON() bool { return *o.json || *o.format == "json" }

func (o *output) location() *time.Location {
	switch {
	case *o.utc:
		return time.UTC
	case o.env.Location != nil:
		return o.env.Location
	}
	return time.Local
}

// when shows a time to the minute in the chosen zone, with the zone's offset ("Z"
// for UTC), so that it can never be taken for another zone's.
func (o *output) when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.In(o.location()).Format("2006-01-02 15:04 Z07:00")
}

// color wraps s in an ANSI colour on a terminal that has not asked for none.
func (o *output) color(code, s string) string {
	if !o.env.Terminal || o.env.Getenv("NO_COLOR") != "" || o.asJSON() {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

// Colours of the verdicts.
const (
	colorRed    = "31"
	colorGreen  = "32"
	colorYellow = "33"
)

// errHelp ends a command whose help was asked for: it exits 0.
var errHelp = errors.New("help shown")

// commandHelp prints a command's usage, what it does and its flags.
func commandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	usage, summary := name, ""
	first, _, _ := strings.Cut(name, " ")
	for _, c := range commands() {
		if c.name == first {
			usage, summary = c.usage, c.summary
		}
	}
	fmt.Fprintf(w, "Usage: dexbridge %s\n\n%s\n", usage, summary)
	if fs != nil {
		fmt.Fprintln(w, "\nFlags:")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

// parseFlags parses args, flags and positional arguments in any order. -h prints the
// command's help on stdout and ends it with errHelp (exit 0), whatever else is on
// the line; a bad flag is a usage error.
func parseFlags(fs *flag.FlagSet, name string, env Env, args []string) ([]string, error) {
	fs.Usage = func() {}
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(env.Stdout, name, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v (dexbridge %s -h shows the flags)", ErrUsage, err, name)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// redactor keeps secrets out of everything a command prints: its output, its
// errors and the -v trace. The key is never printed on purpose; this is the net
// under that rule.
type redactor struct {
	mu      sync.Mutex
	secrets []string
}

const redacted = "[redacted]"

func (r *redactor) add(s string) {
	if len(s) < 8 { // too short to be a key; replacing it would mangle ordinary text
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
}

func (r *redactor) clean(s string) string {
	if r == nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.secrets {
		s = strings.ReplaceAll(s, k, redacted)
	}
	return s
}

func (r *redactor) writer(w io.Writer) io.Writer { return redactingWriter{w: w, r: r} }

type redactingWriter struct {
	w io.Writer
	r *redactor
}

func (rw redactingWriter) Write(p []byte) (int, error) {
	clean := rw.r.clean(string(p))
	if clean == string(p) {
		return rw.w.Write(p)
	}
	if _, err := io.WriteString(rw.w, clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactedError is err with the secrets taken out of its text; errors.Is and As
// still see the original.
type redactedError struct {
	err error
	r   *redactor
}

func (e redactedError) Error() string { return e.r.clean(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// progress shows what a command waits for. On a terminal it is one line, redrawn
// with the state and the time waited; elsewhere (a pipe, a log file) each new state
// is a plain line, and a wait with no state says nothing.
type progress struct {
	env     Env
	what    string
	mu      sync.Mutex
	state   string
	done    chan struct{}
	stopped chan struct{}
}

func startProgress(env Env, what, state string) *progress {
	p := &progress{env: env, what: what, done: make(chan struct{}), stopped: make(chan struct{})}
	if !env.Terminal {
		close(p.stopped)
		p.set(state)
		return p
	}
	p.state = state
	go p.redraw()
	return p
}

// set records the state the API reported.
func (p *progress) set(state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.env.Terminal && state != "" && state != p.state {
		fmt.Fprintf(p.env.Stderr, "%s: %s\n", p.what, state)
	}
	p.state = state
}

func (p *progress) redraw() {
	defer close(p.stopped)
	start := time.Now()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		s := p.state
		p.mu.Unlock()
		if s != "" {
			s = ": " + s
		}
		fmt.Fprintf(p.env.Stderr, "\r\033[K%s%s (%ds)", p.what, s, int(time.Since(start).Seconds()))
		select {
		case <-p.done:
			fmt.Fprint(p.env.Stderr, "\r\033[K")
			return
		case <-t.C:
		}
	}
}

// stop clears the line; the command's answer follows.
func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.stopped
}
