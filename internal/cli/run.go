package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/topic"
)

func runCmd(ctx context.Context, env Env, args []string) error {
	fs, path := flags("run", env)
	services, err := parseFlags(fs, "run", env, args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path, env)
	if err != nil {
		return err
	}
	log, err := logging.New(env.Stdout, cfg.LogLevel)
	if err != nil {
		return err
	}
	return app.Run(ctx, app.Options{Config: cfg, Services: services, Log: log, Version: env.Version})
}

func migrateCmd(ctx context.Context, env Env, args []string) error {
	fs, path := flags("migrate", env)
	out := outputFlags(fs, env)
	if pos, err := parseFlags(fs, "migrate", env, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, pos[0])
	}
	if err := out.check(); err != nil {
		return err
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
	if out.asJSON() {
		return printJSON(env.Stdout, map[string][]string{"applied": append([]string{}, applied...)})
	}
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
	section("webhooks", checkWebhooks(cfg, r.Catalog, env.Getenv))
	if len(sections) > 0 {
		return errors.New(strings.Join(sections, "\n"))
	}
	_, err = fmt.Fprintf(env.Stdout, "configuration ok: %d instances, %d topics, %d remote actions, %d saved queries outside topics\n",
		len(cfg.Instances), len(r.Catalog.List()), len(r.Allowlist.List()), r.SavedQueries)
	return err
}
