package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dexbridge/dexbridge/internal/allowlist"
	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/rules"
	"github.com/dexbridge/dexbridge/internal/store"
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
	db, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := store.Migrate(ctx, db)
	if err != nil {
		return err
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
		sections = append(sections, fmt.Sprintf("%s:\n  %s", name, joinLines(err)))
	}
	cat, errTopics := topic.LoadDir(cfg.TopicsDir)
	if errTopics != nil {
		section("topics", errTopics)
	}
	var allow *allowlist.List
	var errAllow error
	if cfg.RemoteActionsFile == "" {
		errAllow = &config.Error{Key: "remote_actions_file", Reason: "required: the remote-action allow-list"}
	} else {
		allow, errAllow = allowlist.LoadFile(cfg.RemoteActionsFile)
	}
	if errAllow != nil {
		section("remote actions", errAllow)
	}
	queries := 0
	if cat != nil {
		if allow != nil {
			if _, err := rules.Compile(cat, allow); err != nil {
				section("topics", err)
			}
		}
		if cfg.QueriesFile != "" {
			if err := rules.CheckQueryFile(cfg.QueriesFile, cat); err != nil {
				section("saved queries", err)
			} else if qs, err := topic.LoadQueries(cfg.QueriesFile); err == nil {
				queries = len(qs)
			}
		}
	}
	if err := checkWebhooks(cfg, cat, env.Getenv); err != nil {
		section("webhooks", err)
	}
	if len(sections) > 0 {
		return errors.New(strings.Join(sections, "\n"))
	}
	_, err = fmt.Fprintf(env.Stdout, "configuration ok: %d instances, %d topics, %d remote actions, %d saved queries outside topics\n",
		len(cfg.Instances), len(cat.List()), len(allow.List()), queries)
	return err
}
