package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
)

// The client commands talk to a running dexbridge over its REST API, for people
// without a chatbot.

type clientFlags struct {
	fs      *flag.FlagSet
	url     *string
	key     *string
	asJSON  *bool
	timeout *time.Duration
}

func newClientFlags(name string, env Env) clientFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	base := env.Getenv("DEXBRIDGE_URL")
	if base == "" {
		base = "http://127.0.0.1:8090"
	}
	return clientFlags{
		fs:      fs,
		url:     fs.String("url", base, "dexbridge's address ($DEXBRIDGE_URL)"),
		key:     fs.String("key", env.Getenv("DEXBRIDGE_API_KEY"), "API key ($DEXBRIDGE_API_KEY)"),
		asJSON:  fs.Bool("json", false, "print the API's JSON answer"),
		timeout: fs.Duration("timeout", 2*time.Minute, "give up after this long"),
	}
}

// parse parses args (flags may follow positional arguments) and returns the client.
func (f clientFlags) parse(args []string) (*apiclient.Client, []string, error) {
	var positional []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		if f.fs.NArg() == 0 {
			break
		}
		positional = append(positional, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	if *f.key == "" {
		return nil, nil, fmt.Errorf("%w: an API key is needed: -key or $DEXBRIDGE_API_KEY (dexbridge apikey create)", ErrUsage)
	}
	return apiclient.New(*f.url, *f.key), positional, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func topicsCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("topics", env)
	c, _, err := f.parse(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	if *f.asJSON {
		return printJSON(env.Stdout, topics)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPLATFORMS\tTITLE")
	for _, t := range topics {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, strings.Join(t.Platforms, ","), t.Title)
	}
	return tw.Flush()
}

func devicesCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("devices", env)
	keys := map[string]*string{
		events.KeyUsername:     f.fs.String("user", "", "the employee's user name"),
		events.KeyUPN:          f.fs.String("upn", "", "the employee's UPN"),
		events.KeyEmail:        f.fs.String("email", "", "the employee's e-mail address"),
		events.KeySID:          f.fs.String("sid", "", "the employee's SID"),
		events.KeyDeviceName:   f.fs.String("device", "", "a device name"),
		events.KeyCollectorUID: f.fs.String("collector-uid", "", "a device's collector UID"),
	}
	instance := f.fs.String("instance", "", "only this instance")
	c, _, err := f.parse(args)
	if err != nil {
		return err
	}
	var key, value string
	for k, v := range keys {
		if *v != "" {
			if key != "" {
				return fmt.Errorf("%w: give one of -user, -upn, -email, -sid, -device, -collector-uid", ErrUsage)
			}
			key, value = k, *v
		}
	}
	if key == "" {
		return fmt.Errorf("%w: give one of -user, -upn, -email, -sid, -device, -collector-uid", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	res, err := c.IdentifyOn(ctx, key, value, *instance)
	if err != nil {
		return err
	}
	if *f.asJSON {
		return printJSON(env.Stdout, res)
	}
	if len(res.Devices) == 0 {
		_, err := fmt.Fprintf(env.Stdout, "no device found for %s %q (source: %s)\n", key, value, res.Source)
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPLATFORM\tOS\tHARDWARE\tINSTANCE\tUSER\tLAST ACTIVITY\tLAST SEEN\tPRESENCE")
	for _, d := range res.Devices {
		user := d.User
		if d.UserFullName != "" {
			user += " (" + d.UserFullName + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Platform, d.OSName, d.HardwareManufacturer, d.HardwareType,
			d.Instance, user, when(d.LastActivity), when(d.LastSeen), d.Presence)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Ambiguous {
		var who []string
		for _, p := range res.People {
			who = append(who, fmt.Sprintf("%s (%s) on %s", cmp.Or(p.FullName, p.User, "someone"), cmp.Or(p.User, p.UPN), p.Instance))
		}
		if _, err := fmt.Fprintf(env.Stdout, "\n%s %q matches %d people: %s; narrow with -instance\n", key, value, len(res.People),
			strings.Join(who, ", ")); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(env.Stdout, "\nsource: %s, data as of %s\n", res.Source, when(res.DataAsOf))
	return err
}

func diagnoseCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("diagnose", env)
	device := f.fs.String("device", "", "device name or collector UID")
	refresh := f.fs.Bool("refresh", false, "run the topic's data collection first")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *device == "" {
		return fmt.Errorf("%w: dexbridge diagnose TOPIC -device NAME [-refresh]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	stop := progress(env.Stderr, "diagnosing "+pos[0]+" on "+*device, nil)
	d, err := c.Diagnose(ctx, pos[0], *device, *refresh)
	stop()
	if err != nil {
		return err
	}
	if *f.asJSON {
		return printJSON(env.Stdout, d)
	}
	fmt.Fprintf(env.Stdout, "%s on %s (%s, source %s, data as of %s)\n\n", d.Topic, d.Device.Name, d.Device.Instance, d.Source, when(d.DataAsOf))
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSTATUS\tDETAIL")
	for _, r := range d.Rules {
		detail := r.Reason
		if r.Status != "not_evaluated" {
			detail = evidence(r.Evidence)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Title, r.Status, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Remediations) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "\nNo remediation suggested.")
		return err
	}
	fmt.Fprintln(env.Stdout, "\nSuggested remediations:")
	tw = tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	for _, s := range d.Remediations {
		what := s.Message
		if s.RemoteAction != "" {
			what = "remote action " + s.RemoteAction + params(s.Params)
			if !s.Ready {
				what += " (not ready: " + s.NotReady + ")"
			}
		}
		generic := ""
		if s.Generic {
			generic = " (generic)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\t%s\n", s.ID, s.Title, generic, what)
	}
	return tw.Flush()
}

func evidence(ev map[string]any) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k[strings.LastIndex(k, ".")+1:], ev[k]))
	}
	return strings.Join(parts, ", ")
}

func params(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+p[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func remediateCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("remediate", env)
	device := f.fs.String("device", "", "device name or collector UID")
	wait := f.fs.Duration("wait", 2*time.Minute, "how long to wait for the remote action to finish")
	reason := f.fs.String("reason", "run from the dexbridge command line", "why (recorded in Nexthink and the audit log)")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || *device == "" {
		return fmt.Errorf("%w: dexbridge remediate TOPIC REMEDIATION -device NAME [-wait 2m]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+*wait)
	defer cancel()
	e, err := c.Remediate(ctx, pos[0], pos[1], *device, 0, *reason)
	if err != nil {
		return err
	}
	return follow(ctx, env, c, e, *wait, *f.asJSON)
}

func actionCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("action", env)
	device := f.fs.String("device", "", "device name or collector UID")
	wait := f.fs.Duration("wait", 2*time.Minute, "how long to wait for the remote action to finish")
	reason := f.fs.String("reason", "run from the dexbridge command line", "why (recorded in Nexthink and the audit log)")
	var ps paramFlags
	f.fs.Var(&ps, "param", "an input as name=value (repeatable)")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *device == "" {
		return fmt.Errorf("%w: dexbridge action '#remote_action_id' -device NAME [-param k=v] [-wait 2m]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+*wait)
	defer cancel()
	e, err := c.RunAction(ctx, apiclient.Trigger{RemoteAction: pos[0], Device: *device, Params: ps.m, Reason: *reason}, "")
	if err != nil {
		return err
	}
	return follow(ctx, env, c, e, *wait, *f.asJSON)
}

type paramFlags struct{ m map[string]string }

func (p *paramFlags) String() string { return fmt.Sprint(p.m) }

func (p *paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if p.m == nil {
		p.m = map[string]string{}
	}
	p.m[k] = v
	return nil
}

// follow long-polls an execution until it is final or wait ends, showing progress.
func follow(ctx context.Context, env Env, c *apiclient.Client, e *events.Execution, wait time.Duration, asJSON bool) error {
	deadline := time.Now().Add(wait)
	var status atomic.Value // read by the spinner's goroutine
	status.Store(e.Status)
	stop := progress(env.Stderr, e.RemoteAction+" on "+e.Device.Name, func() string { return status.Load().(string) })
	for !events.FinalStatus(e.Status) && time.Now().Before(deadline) {
		next, err := c.Execution(ctx, e.ID, min(20*time.Second, time.Until(deadline)+time.Second))
		if err != nil {
			stop()
			return err
		}
		e = next
		status.Store(next.Status)
	}
	stop()
	if asJSON {
		return printJSON(env.Stdout, e)
	}
	fmt.Fprintf(env.Stdout, "execution %s: %s", e.ID, e.Status)
	if e.StatusDetails != "" {
		fmt.Fprintf(env.Stdout, " (%s)", e.StatusDetails)
	}
	fmt.Fprintln(env.Stdout)
	for k, v := range e.Outputs {
		fmt.Fprintf(env.Stdout, "  %s: %v\n", k, v)
	}
	if !events.FinalStatus(e.Status) {
		fmt.Fprintf(env.Stdout, "still running; follow it with: dexbridge execution %s\n", e.ID)
	}
	return nil
}

func executionCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("execution", env)
	wait := f.fs.Duration("wait", 0, "wait this long for the execution to finish")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: dexbridge execution ID [-wait 1m]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+*wait)
	defer cancel()
	e, err := c.Execution(ctx, pos[0], 0)
	if err != nil {
		return err
	}
	return follow(ctx, env, c, e, *wait, *f.asJSON)
}

func statusCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("status", env)
	c, _, err := f.parse(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, s)
}

// progress shows a spinner with the elapsed time on w (a terminal's stderr) until
// the returned function is called.
func progress(w io.Writer, what string, state func() string) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		frames := []string{"|", "/", "-", "\\"}
		start := time.Now()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			s := ""
			if state != nil {
				s = " " + state()
			}
			fmt.Fprintf(w, "\r%s %s%s (%ds)   ", frames[i%len(frames)], what, s, int(time.Since(start).Seconds()))
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped }
}
