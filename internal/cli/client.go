package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/api"
	"github.com/dexbridge/dexbridge/internal/apiclient"
)

// The client commands talk to a running dexbridge over its REST API, for people
// without a chatbot.

type clientFlags struct {
	fs      *flag.FlagSet
	name    string
	env     Env
	url     *string
	key     *string
	verbose *bool
	timeout *time.Duration
	out     *output
}

func newClientFlags(name string, env Env) clientFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	base := env.Getenv("DEXBRIDGE_URL")
	if base == "" {
		base = "http://127.0.0.1:8090"
	}
	return clientFlags{
		fs:   fs,
		name: name,
		env:  env,
		url:  fs.String("url", base, "dexbridge's address ($DEXBRIDGE_URL)"),
		// No default shown: -h must not print the key $DEXBRIDGE_API_KEY holds.
		key:     fs.String("key", "", "API key (default $DEXBRIDGE_API_KEY)"),
		verbose: fs.Bool("v", false, "trace each HTTP exchange on stderr (without the key)"),
		timeout: fs.Duration("timeout", 2*time.Minute, "give up after this long"),
		out:     outputFlags(fs, env),
	}
}

// parse parses args (flags may follow positional arguments) and returns the client.
func (f clientFlags) parse(args []string) (*apiclient.Client, []string, error) {
	positional, err := parseFlags(f.fs, f.name, f.env, args)
	if err != nil {
		return nil, nil, err
	}
	if err := f.out.check(); err != nil {
		return nil, nil, err
	}
	key := *f.key
	if key == "" {
		key = f.env.Getenv("DEXBRIDGE_API_KEY")
	}
	f.env.secrets.add(key)
	if key == "" {
		return nil, nil, fmt.Errorf("%w: an API key is needed: -key or $DEXBRIDGE_API_KEY (dexbridge apikey create)", ErrUsage)
	}
	t := &transport{next: http.DefaultTransport, notices: f.env.Stderr, retries: maxRetries, maxWait: maxRetryAfter, now: time.Now}
	if *f.verbose {
		t.trace = f.env.Stderr
	}
	return apiclient.New(*f.url, key).WithHTTPClient(&http.Client{Transport: t}), positional, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func topicsCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("topics", env)
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("%w: dexbridge topics [TOPIC]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		i := slices.IndexFunc(topics, func(t events.Topic) bool { return t.ID == pos[0] || t.LegacyID == pos[0] })
		if i < 0 {
			return fmt.Errorf("no topic %q (dexbridge topics lists them)", pos[0])
		}
		topics = topics[i : i+1]
	}
	if f.out.asJSON() {
		return printJSON(env.Stdout, topics)
	}
	if len(pos) == 1 {
		return topicDetail(env.Stdout, topics[0])
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPLATFORMS\tTITLE\tEMPLOYEES SAY")
	for _, t := range topics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, strings.Join(t.Platforms, ","), t.Title, quoted(t.Phrases))
	}
	return tw.Flush()
}

// topicDetail shows one topic: what it is about, how employees say it (the phrases
// a chatbot matches their words against) and what it can do about it.
func topicDetail(w io.Writer, t events.Topic) error {
	fmt.Fprintf(w, "%s: %s\n", t.ID, t.Title)
	if t.Description != "" {
		fmt.Fprintf(w, "%s\n", t.Description)
	}
	fmt.Fprintf(w, "platforms: %s\nqueries:   %s\n", strings.Join(t.Platforms, ", "), strings.Join(t.Queries, ", "))
	fmt.Fprintln(w, "\nEmployees say:")
	for _, p := range t.Phrases {
		fmt.Fprintf(w, "  %q\n", p)
	}
	if len(t.Phrases) == 0 {
		fmt.Fprintln(w, "  (no phrases)")
	}
	fmt.Fprintln(w, "\nRemediations:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range t.Remediations {
		what := r.Message
		if r.RemoteAction != "" {
			what = "remote action " + r.RemoteAction
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.ID, r.Title, what)
	}
	return tw.Flush()
}

func quoted(phrases []string) string {
	q := make([]string, len(phrases))
	for i, p := range phrases {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, ", ")
}

func devicesCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("devices", env)
	keys := map[string]*string{
		events.KeyUsername:     f.fs.String("user", "", "the employee's user name (also DOMAIN\\user or user@domain)"),
		events.KeyUPN:          f.fs.String("upn", "", "the employee's UPN"),
		events.KeyEmail:        f.fs.String("email", "", "the employee's e-mail address"),
		events.KeySID:          f.fs.String("sid", "", "the employee's SID"),
		events.KeyDeviceName:   f.fs.String("device", "", "a device name"),
		events.KeyCollectorUID: f.fs.String("collector-uid", "", "a device's collector UID"),
	}
	instance := f.fs.String("instance", "", "only this instance")
	c, pos, err := f.parse(args)
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
	if key == "" || len(pos) != 0 {
		return fmt.Errorf("%w: give one of -user, -upn, -email, -sid, -device, -collector-uid", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	res, err := c.IdentifyOn(ctx, key, value, *instance)
	if err != nil {
		return err
	}
	if f.out.asJSON() {
		return printJSON(env.Stdout, res)
	}
	if len(res.Devices) == 0 {
		_, err := fmt.Fprintf(env.Stdout, "no device found for %s %q (source: %s)\n", key, value, res.Source)
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPLATFORM\tOS\tHARDWARE\tINSTANCE\tUSER\tMATCHED BY\tLAST ACTIVITY\tLAST SEEN\tPRESENCE")
	for _, d := range res.Devices {
		user := d.User
		if d.UserFullName != "" {
			user += " (" + d.UserFullName + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Platform, d.OSName, d.HardwareManufacturer, d.HardwareType,
			d.Instance, cmp.Or(user, "-"), cmp.Or(d.MatchedBy, "-"), f.out.when(d.LastActivity), f.out.when(d.LastSeen), f.out.presence(d.Presence))
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
	_, err = fmt.Fprintf(env.Stdout, "\nsource: %s, data as of %s\n", res.Source, f.out.when(res.DataAsOf))
	return err
}

// presence shows online, offline or unknown, coloured on a terminal.
func (o *output) presence(p string) string {
	switch p {
	case "":
		return "-"
	case events.PresenceOnline:
		return o.color(colorGreen, p)
	case events.PresenceOffline:
		return o.color(colorYellow, p)
	}
	return p
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
	p := startProgress(env, "diagnosing "+pos[0]+" on "+*device, "")
	d, err := c.Diagnose(ctx, pos[0], *device, *refresh)
	p.stop()
	if err != nil {
		return err
	}
	if f.out.asJSON() {
		return printJSON(env.Stdout, d)
	}
	return printDiagnosis(env.Stdout, f.out, d)
}

// printDiagnosis shows the verdict and why first, then the device's presence and
// the age of the data, then every rule and the remediations.
func printDiagnosis(w io.Writer, o *output, d *events.Diagnosis) error {
	fmt.Fprintf(w, "%s on %s (%s): verdict %s\n", d.Topic, d.Device.Name, d.Device.Instance, o.verdict(d.Verdict))
	for _, r := range d.VerdictReasons {
		detail := r.Message
		if len(r.Rules) > 0 {
			detail += " (rules: " + strings.Join(r.Rules, ", ") + ")"
		}
		if len(r.Queries) > 0 {
			detail += " (queries: " + strings.Join(r.Queries, ", ") + ")"
		}
		fmt.Fprintf(w, "  because %s: %s\n", r.Code, detail)
	}
	fmt.Fprintf(w, "device: %s, last seen %s\n", o.presence(cmp.Or(d.Device.Presence, events.PresenceUnknown)), o.when(d.Device.LastSeen))
	stale := ""
	if d.Stale {
		stale = fmt.Sprintf(", stale (older than %s)", time.Duration(d.MaxAgeSeconds)*time.Second)
	}
	fmt.Fprintf(w, "data as of %s%s, source %s\n\n", o.when(d.DataAsOf), stale, d.Source)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
		_, err := fmt.Fprintln(w, "\nNo remediation suggested.")
		return err
	}
	fmt.Fprintln(w, "\nSuggested remediations:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range d.Remediations {
		what := s.Message
		if s.RemoteAction != "" {
			what = "remote action " + s.RemoteAction + params(s.Params)
			if !s.Ready {
				what += " (not ready: " + s.NotReady + ")"
			}
		}
		if s.InProgress != nil {
			what += " (in progress)"
		}
		generic := ""
		if s.Generic {
			generic = " (generic)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\t%s\n", s.ID, s.Title, generic, what)
	}
	return tw.Flush()
}

func (o *output) verdict(v string) string {
	switch v {
	case events.VerdictProblemsFound:
		return o.color(colorRed, v)
	case events.VerdictHealthy:
		return o.color(colorGreen, v)
	case events.VerdictInconclusive:
		return o.color(colorYellow, v)
	}
	return cmp.Or(v, "-")
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
	alreadyRunning(env, f.out, e)
	return follow(ctx, env, f.out, c, &e.Execution, *wait, true)
}

func actionCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("action", env)
	device := f.fs.String("device", "", "device name or collector UID")
	wait := f.fs.Duration("wait", 2*time.Minute, "how long to wait for the remote action to finish")
	reason := f.fs.String("reason", "run from the dexbridge command line", "why (recorded in Nexthink and the audit log)")
	force := f.fs.Bool("force", false, "run it even when the same action with the same params is still running on the device")
	var ps paramFlags
	f.fs.Var(&ps, "param", "an input as name=value (repeatable)")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *device == "" {
		return fmt.Errorf("%w: dexbridge action '#remote_action_id' -device NAME [-param k=v] [-wait 2m] [-force]", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+*wait)
	defer cancel()
	e, err := c.RunAction(ctx, apiclient.Trigger{RemoteAction: pos[0], Device: *device, Params: ps.m, Reason: *reason, Force: *force}, "")
	if err != nil {
		return err
	}
	alreadyRunning(env, f.out, e)
	return follow(ctx, env, f.out, c, &e.Execution, *wait, true)
}

// alreadyRunning says on stderr when the trigger was answered with the execution of
// the same fix that was already active, rather than run again.
func alreadyRunning(env Env, o *output, e *api.Execution) {
	if e.Existing {
		fmt.Fprintf(env.Stderr, "%s is already running on %s (execution %s, started %s): following it\n",
			e.RemoteAction, e.Device.Name, e.ID, o.when(&e.CreatedAt))
	}
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

// state is how the progress line shows an execution: its status as the API has it,
// and the device's presence when the execution waits for it.
func state(o *output, e *events.Execution) string {
	s := e.Status
	if e.StatusDetails != "" {
		s += " (" + e.StatusDetails + ")"
	}
	if events.AwaitsAbsentDevice(*e) {
		s += fmt.Sprintf(", device %s, last seen %s", cmp.Or(e.Device.Presence, events.PresenceUnknown), o.when(e.Device.LastSeen))
	}
	return s
}

// follow long-polls an execution until it is final, wait ends or, with untilAway,
// its device is away (it would wait hours for it), showing the status the API
// reports as it changes.
func follow(ctx context.Context, env Env, o *output, c *apiclient.Client, e *events.Execution, wait time.Duration, untilAway bool) error {
	deadline := time.Now().Add(wait)
	p := startProgress(env, e.RemoteAction+" on "+e.Device.Name, state(o, e))
	for !events.FinalStatus(e.Status) && !(untilAway && events.AwaitsAbsentDevice(*e)) && time.Now().Before(deadline) {
		next, err := c.Execution(ctx, e.ID, min(20*time.Second, time.Until(deadline)+time.Second))
		if err != nil {
			p.stop()
			return err
		}
		e = next
		p.set(state(o, e))
	}
	p.stop()
	if o.asJSON() {
		return printJSON(env.Stdout, e)
	}
	return printExecution(env.Stdout, o, e)
}

// printExecution shows an execution as a two-column table, then what to do next
// when it is not over.
func printExecution(w io.Writer, o *output, e *events.Execution) error {
	fmt.Fprintf(w, "execution %s: %s", e.ID, e.Status)
	if e.StatusDetails != "" {
		fmt.Fprintf(w, " (%s)", e.StatusDetails)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  remote action\t%s%s\n", e.RemoteAction, params(e.Params))
	fmt.Fprintf(tw, "  device\t%s (%s), %s, last seen %s\n", e.Device.Name, e.Device.Instance, o.presence(e.Device.Presence), o.when(e.Device.LastSeen))
	fmt.Fprintf(tw, "  created\t%s\n", o.when(&e.CreatedAt))
	fmt.Fprintf(tw, "  updated\t%s\n", o.when(&e.UpdatedAt))
	if !events.FinalStatus(e.Status) {
		fmt.Fprintf(tw, "  expires\t%s\n", o.when(&e.ExpiresAt))
	}
	keys := make([]string, 0, len(e.Outputs))
	for k := range e.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%v\n", k, e.Outputs[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case events.FinalStatus(e.Status):
	case events.AwaitsAbsentDevice(*e):
		fmt.Fprintf(w, "the device is not online: the execution waits for it until %s; follow it with: dexbridge execution %s -wait 10m\n",
			o.when(&e.ExpiresAt), e.ID)
	default:
		fmt.Fprintf(w, "still running; follow it with: dexbridge execution %s -wait 1m\n", e.ID)
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
	// Asked to wait for this one: its device may come back within the wait.
	return follow(ctx, env, f.out, c, e, *wait, false)
}

func statusCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("status", env)
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: dexbridge status", ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	raw, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if f.out.asJSON() {
		return printJSON(env.Stdout, raw)
	}
	var s api.Status
	if b, err := json.Marshal(raw); err != nil || json.Unmarshal(b, &s) != nil {
		return fmt.Errorf("status: unexpected answer")
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSTATE\tLAST DISCOVERY\tOUTCOME\tDATA AS OF\tNEXT DISCOVERY\tDEVICES\tUSERS\tACTIVITIES")
	for _, in := range s.Instances {
		state := in.State
		if in.DownSince != nil {
			state += " since " + f.out.when(in.DownSince)
		}
		last, outcome := "-", "-"
		if r := in.LastDiscovery; r != nil {
			last, outcome = f.out.when(&r.StartedAt), r.Outcome
			if r.Error != "" {
				outcome += ": " + r.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", in.Name, state, last, outcome, f.out.when(in.DataAsOf),
			f.out.when(in.NextDiscoveryAt), in.Cache.Devices, in.Cache.Users, in.Cache.Activities)
	}
	fmt.Fprintf(tw, "(cache)\t\t\t\t\t\t%d\t%d\t%d\n", s.Cache.Devices, s.Cache.Users, s.Cache.Activities)
	return tw.Flush()
}
