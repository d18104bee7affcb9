package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/locale"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/topic"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
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
	section("NXQL forms", r.NXQLErr)
	section("v6 instances", v6Missing(cfg, r.NXQL.Missing))
	rules, err := checkWebhooks(cfg, r.Catalog, env.Getenv)
	section("webhooks", err)
	if len(sections) > 0 {
		return errors.New(strings.Join(sections, "\n"))
	}
	_, err = fmt.Fprintf(env.Stdout, "configuration ok: %d instances, %d topics, %d remote actions, %d saved queries outside topics\n",
		len(cfg.Instances), len(r.Catalog.List()), len(r.Allowlist.List()), r.SavedQueries)
	if err != nil {
		return err
	}
	_, err = io.WriteString(env.Stdout, missingTranslations(r.Catalog, rules))
	return err
}

// missingTranslations reports, per locale and file, the employee-facing texts that
// have no translation and are said in English. They are not errors: the English
// text stands in.
func missingTranslations(cat *topic.Catalog, rules *webhookmap.Rules) string {
	var b strings.Builder
	for _, loc := range locale.Translated() {
		var files []string
		n := 0
		add := func(file string, keys []string) {
			if len(keys) > 0 {
				files = append(files, fmt.Sprintf("    %s: %s", file, strings.Join(keys, ", ")))
				n += len(keys)
			}
		}
		for _, t := range cat.List() {
			add(t.File, t.MissingTranslations(loc))
		}
		if rules != nil {
			add(rules.File, rules.MissingTranslations(loc))
		}
		if n == 0 {
			fmt.Fprintf(&b, "translations %s: complete\n", loc)
			continue
		}
		texts := "texts"
		if n == 1 {
			texts = "text"
		}
		fmt.Fprintf(&b, "translations %s: %d %s missing, said in English:\n%s\n", loc, n, texts, strings.Join(files, "\n"))
	}
	return b.String()
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
