package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/topic"
)

func runCmd(ctx context.Context, env Env, args []string) error {
	fs, path := flags("run", env)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	log, err := logging.New(env.Stdout, cfg.LogLevel)
	if err != nil {
		return err
	}
	return app.Run(ctx, app.Options{Config: cfg, Services: fs.Args(), Log: log, Version: env.Version})
}

func migrateCmd(ctx context.Context, env Env, args []string) error {
	fs, path := flags("migrate", env)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	db, applied, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(applied) == 0 {
		_, err = fmt.Fprintln(env.Stdout, "database is up to date")
		return err
	}
	for _, name := range applied {
		fmt.Fprintln(env.Stdout, "applied", name)
	}
	return nil
}

func checkCmd(_ context.Context, env Env, args []string) error {
	fs, path := flags("check", env)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	// Report every problem of every file, grouped by what they concern, not just the
	// first one found.
	var sections []string
	section := func(name string, err error) {
		if err != nil {
			sections = append(sections, fmt.Sprintf("%s:\n  %s", name, joinLines(err)))
		}
	}
	r := topic.FilesOf(cfg).Check()
	section("topics", r.Topics)
	section("remote actions", r.RemoteActions)
	section("topics", r.Compile)
	section("saved queries", r.Queries)
	section("NXQL forms", r.NXQLErr)
	section("v6 instances", v6Missing(cfg, r.NXQL.Missing))
	section("webhooks", checkWebhooks(cfg, r.Catalog, env.Getenv))
	if len(sections) > 0 {
		return errors.New(strings.Join(sections, "\n"))
	}
	_, err = fmt.Fprintf(env.Stdout, "configuration ok: %d instances, %d topics, %d remote actions, %d saved queries outside topics\n",
		len(cfg.Instances), len(r.Catalog.List()), len(r.Allowlist.List()), r.SavedQueries)
	return err
}

// v6Missing names the queries that cannot run on the configured V6 instances
// because they have no NXQL form.
func v6Missing(cfg config.Config, missing []string) error {
	var v6 []string
	for _, in := range cfg.Instances {
		if in.IsV6() {
			v6 = append(v6, in.Name)
		}
	}
	if len(v6) == 0 || len(missing) == 0 {
		return nil
	}
	errs := make([]error, len(missing))
	for k, m := range missing {
		errs[k] = fmt.Errorf("query %s has no nxql form: it cannot run on instance(s) %s", m, strings.Join(v6, ", "))
	}
	return errors.Join(errs...)
}
