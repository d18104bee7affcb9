package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/apiclient"
)

// executionsCmd lists executions, newest first, following the API's pages up to
// -limit of them.
func executionsCmd(ctx context.Context, env Env, args []string) error {
	f := newClientFlags("executions", env)
	device := f.fs.String("device", "", "only this device (name or collector UID)")
	status := f.fs.String("status", "", "only these statuses, comma-separated ("+strings.Join(events.ExecutionStatuses(), ", ")+")")
	since := f.fs.String("since", "", "only those created since this time (RFC 3339) or this long ago (24h)")
	action := f.fs.String("action", "", "only this remote action ('#repair_onedrive')")
	limit := f.fs.Int("limit", 50, "at most this many")
	c, pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *limit < 1 {
		return fmt.Errorf("%w: dexbridge executions [-device NAME] [-status s,...] [-since 24h] [-action '#id'] [-limit 50]", ErrUsage)
	}
	q := apiclient.ExecutionQuery{Device: *device, RemoteAction: *action}
	if *status != "" {
		q.Statuses = strings.Split(*status, ",")
	}
	if *since != "" {
		if q.Since, err = sinceFlag(*since, time.Now()); err != nil {
			return fmt.Errorf("%w: -since: %v", ErrUsage, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	var list []events.Execution
	more := false
	for {
		q.Limit = min(*limit-len(list), events.MaxExecutionsPage)
		page, err := c.Executions(ctx, q)
		if err != nil {
			return err
		}
		list = append(list, page.Executions...)
		if page.NextCursor == "" {
			break
		}
		if len(list) >= *limit {
			more = true
			break
		}
		q.Cursor = page.NextCursor
	}
	if f.out.asJSON() {
		return printJSON(env.Stdout, list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "no execution found")
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTION\tCREATED\tREMOTE ACTION\tDEVICE\tINSTANCE\tSTATUS\tTOPIC")
	for _, e := range list {
		topic := "-"
		if e.Topic != "" {
			topic = e.Topic
			if e.Remediation != "" {
				topic += "/" + e.Remediation
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\t%s\t%s\n", e.ID, f.out.when(&e.CreatedAt), e.RemoteAction, params(e.Params), e.Device.Name,
			e.Device.Instance, e.Status, topic)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more {
		_, err := fmt.Fprintf(env.Stdout, "\nmore executions match: raise -limit (now %d)\n", *limit)
		return err
	}
	return nil
}

// sinceFlag reads -since: an RFC 3339 time, or a duration before now.
func sinceFlag(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-05-04T09:00:00Z) or a duration (24h), got %q", s)
	}
	return t, nil
}
