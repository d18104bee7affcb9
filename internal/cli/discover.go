package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/services/discovery"
)

// discoverCmd runs discoveries in this process, under the same lease as the
// discovery service: when a replica is discovering an instance, it says so and
// leaves it alone.
func discoverCmd(ctx context.Context, env Env, args []string) error {
	fs, path := flags("discover", env)
	printQuery := fs.Bool("print-query", false, "print the NQL of the device query to save in the tenant, and exit")
	out := outputFlags(fs, env)
	names, err := parseFlags(fs, "discover", env, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	if *printQuery {
		fields, err := discovery.FieldsFromConfig(cfg)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.Stdout, "# %s\n# (add the tenant's custom fields and scores to the list, as device.#<name> and\n"+
			"# device.score.<name>, to have them cached too)\n%s", discovery.QueryDevices, discovery.DeviceQuery(fields))
		return err
	}
	log, err := logging.New(env.Stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	pool, _, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	db := store.New(pool)
	d, err := discovery.FromConfig(cfg, db, nil, nil, events.NewSubjects(cfg.NATS.SubjectPrefix), log, nil)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		for _, in := range cfg.Instances {
			names = append(names, in.Name)
		}
	}
	if len(names) == 0 {
		return errors.New("no instance is configured")
	}
	var failed []error
	var results []discoverResult
	for _, name := range names {
		start := time.Now()
		run, err := d.RunOnce(ctx, name, "cli", true)
		r := discoverResult{Instance: name}
		switch {
		case errors.Is(err, discovery.ErrBusy):
			r.Outcome = "busy"
			if !out.asJSON() {
				fmt.Fprintf(env.Stdout, "%s: a discovery is already running (another replica); left alone\n", name)
			}
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
		case run.ID == 0 && err != nil:
			r.Outcome = "failure"
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
		default:
			r = discoverResult{Instance: name, RunID: run.ID, Outcome: run.Outcome, Attempts: run.Attempts,
				DurationMS: time.Since(start).Milliseconds(), Devices: run.Devices, Users: run.Users, Activities: run.Activities}
			if !out.asJSON() {
				fmt.Fprintf(env.Stdout, "%s: run %d %s after %d attempt(s) in %s: %s devices, %s users, %s activities\n",
					name, run.ID, run.Outcome, run.Attempts, time.Since(start).Round(time.Millisecond),
					count(run.Devices), count(run.Users), count(run.Activities))
			}
			if err != nil {
				failed = append(failed, err)
			}
		}
		results = append(results, r)
	}
	if out.asJSON() {
		if err := printJSON(env.Stdout, results); err != nil {
			return err
		}
	}
	return errors.Join(failed...)
}

// discoverResult is one instance's discovery as -o json prints it.
type discoverResult struct {
	Instance   string `json:"instance"`
	RunID      int64  `json:"run_id,omitempty"`
	Outcome    string `json:"outcome"`
	Attempts   int    `json:"attempts,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Devices    *int64 `json:"devices"`
	Users      *int64 `json:"users"`
	Activities *int64 `json:"activities"`
}

func count(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}
