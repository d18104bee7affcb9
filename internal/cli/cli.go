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
		{"apikey", "apikey create|list|revoke [-name n] [-scopes s] [id]", "manage API keys in the database", apikeyCmd},
		{"discover", "discover [-config file] [-print-query] [instance ...]", "run a discovery of every instance, or the named ones, now", discoverCmd},
		{"audit", "audit export [-since t] [-until t] [-o file]", "write the remote-action audit log as JSON lines", auditCmd},
		{"topics", "topics [-url u] [-key k]", "list the topics (client of a running dexbridge)", topicsCmd},
		{"devices", "devices -user|-upn|-email|-sid|-device|-collector-uid X [-instance I]", "identify an employee's devices", devicesCmd},
		{"diagnose", "diagnose TOPIC -device NAME [-refresh]", "diagnose a topic on a device", diagnoseCmd},
		{"remediate", "remediate TOPIC REMEDIATION -device NAME [-wait 2m]", "run a topic's remediation and follow it", remediateCmd},
		{"action", "action '#id' -device NAME [-param k=v]", "run an allow-listed remote action and follow it", actionCmd},
		{"execution", "execution ID [-wait 1m]", "show (and follow) a remote action execution", executionCmd},
		{"status", "status", "instances, discovery and cache", statusCmd},
		{"version", "version", "print the version", func(_ context.Context, env Env, _ []string) error {
			_, err := fmt.Fprintln(env.Stdout, env.Version)
			return err
		}},
	}
}

// ErrUsage is returned for a command line that cannot be understood.
var ErrUsage = errors.New("usage")

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
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
}

// flags returns a flag set with the common -config flag.
func flags(name string, env Env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	path := fs.String("config", "", "configuration file")
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
