// Package cli is the dexbridge command line: it parses arguments and calls into the
// packages that do the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/store"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Getenv  func(string) string
	Stdout  io.Writer
	Stderr  io.Writer
	Version string
	// Terminal says stdout and stderr are both a terminal: only then are there
	// colours and a progress line redrawn in place.
	Terminal bool
	// Location is the zone times are shown in (-utc aside); nil is the local zone.
	Location *time.Location

	secrets *redactor // what must never be printed (Run sets it)
}

type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"run", "run [-config file] [service ...]", "run every service, or the named ones, in this process", runCmd},
		{"migrate", "migrate [-config file]", "apply the database migrations and exit", migrateCmd},
		{"check", "check [-config file]", "validate the configuration and topics without starting anything", checkCmd},
		{"apikey", "apikey create|list|revoke [-name n] [-scopes s] [ID]", "manage API keys in the database", apikeyCmd},
		{"discover", "discover [-config file] [-print-query] [instance ...]", "run a discovery of every instance, or the named ones, now", discoverCmd},
		{"audit", "audit export [-since t] [-until t] [-o file]", "write the remote-action audit log as JSON lines", auditCmd},
		{"topics", "topics [TOPIC]", "list the topics and what employees say of each, or show one (client of a running dexbridge)", topicsCmd},
		{"devices", "devices -user|-upn|-email|-sid|-device|-collector-uid X [-instance I]", "identify an employee's devices", devicesCmd},
		{"diagnose", "diagnose TOPIC -device NAME [-refresh]", "diagnose a topic on a device", diagnoseCmd},
		{"remediate", "remediate TOPIC REMEDIATION -device NAME [-wait 2m]", "run a topic's remediation and follow it", remediateCmd},
		{"action", "action '#id' -device NAME [-param k=v] [-force]", "run an allow-listed remote action and follow it", actionCmd},
		{"execution", "execution ID [-wait 1m]", "show (and follow) a remote action execution", executionCmd},
		{"executions", "executions [-device NAME] [-status s,...] [-since 24h]", "list remote action executions, newest first", executionsCmd},
		{"status", "status", "instances, discovery and cache", statusCmd},
		{"version", "version [-o json]", "print the version", versionCmd},
	}
}

func versionCmd(_ context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	out := outputFlags(fs, env)
	if pos, err := parseFlags(fs, "version", env, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, pos[0])
	}
	if err := out.check(); err != nil {
		return err
	}
	if out.asJSON() {
		return printJSON(env.Stdout, map[string]string{"version": env.Version})
	}
	_, err := fmt.Fprintln(env.Stdout, env.Version)
	return err
}

// ErrUsage is returned for a command line that cannot be understood.
var ErrUsage = errors.New("usage")

// Run executes the command line args (without the program name). Nothing it prints
// or returns holds the API key of $DEXBRIDGE_API_KEY or -key.
func Run(ctx context.Context, args []string, env Env) error {
	env.secrets = &redactor{}
	env.secrets.add(env.Getenv("DEXBRIDGE_API_KEY"))
	for i, a := range args {
		// The key may be on the command line (-key K, --key=K): it is a secret from the start.
		if name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "key" {
			if ok {
				env.secrets.add(value)
			} else if i+1 < len(args) {
				env.secrets.add(args[i+1])
			}
		}
	}
	env.Stdout, env.Stderr = env.secrets.writer(env.Stdout), env.secrets.writer(env.Stderr)
	err := run(ctx, args, env)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return nil
	case err == ErrUsage:
		return err // the bare sentinel: usage was printed
	case errors.Is(err, ErrUsage) && strings.HasSuffix(err.Error(), flag.ErrHelp.Error()):
		return nil // help asked of a command that parses its own flags: shown by fs.Usage
	}
	return redactedError{err: err, r: env.secrets}
}

func run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	usage(env.Stderr)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dexbridge: the bridge between chatbots and Nexthink.\n\nUsage:")
	cs := commands()
	for _, c := range cs {
		fmt.Fprintf(w, "  dexbridge %-58s %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration: -config, else $DEXBRIDGE_CONFIG, else config/dexbridge.yaml if present; environment variables override it.")
	fmt.Fprintln(w, "Client commands call a running dexbridge at -url ($DEXBRIDGE_URL) with -key ($DEXBRIDGE_API_KEY).")
	fmt.Fprintln(w, "Commands that answer print a table, or JSON with -o json; times are in the local zone, or UTC with -utc.")
	fmt.Fprintln(w, "dexbridge COMMAND -h shows a command's arguments and flags.")
}

// flags returns a flag set with the common -config flag. Its -h prints the
// command's help on stdout.
func flags(name string, env Env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	path := fs.String("config", "", "configuration file")
	fs.Usage = func() { commandHelp(env.Stdout, name, fs) }
	return fs, path
}

// loadConfig resolves the configuration file and loads it.
func loadConfig(path string, env Env) (config.Config, error) {
	if path == "" {
		path = env.Getenv("DEXBRIDGE_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("config/dexbridge.yaml"); err == nil {
			path = "config/dexbridge.yaml"
		}
	}
	return config.Load(path, env.Getenv)
}

// openDatabase opens the pool with the configured settings and migrates the schema.
func openDatabase(ctx context.Context, cfg config.Config) (*pgxpool.Pool, []string, error) {
	pool, err := store.OpenWith(ctx, cfg.DatabaseURL.Reveal(), app.PoolSettings(cfg))
	if err != nil {
		return nil, nil, err
	}
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, applied, nil
}

func joinLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
