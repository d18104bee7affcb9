// Command nxsim runs the Nexthink tenant emulator: Nexthink Infinity tenants (see
// internal/nxsim), or with -mode v6 a V6 Portal and Engines (see internal/nxsim/v6).
//
//	nxsim -addr 127.0.0.1:8091 -size 1000 -seed 1 -topics topics -queries config/queries.yaml
//	nxsim -mode v6 -engines 2 -addr 127.0.0.1:8091   # Portal on 8091, Engines on 8092, 8093
//
// Every flag has an environment equivalent (NXSIM_ADDR, NXSIM_SIZE, ...); a flag given
// on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/v6"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nxsim:", err)
		os.Exit(1)
	}
}

// run parses the flags, starts nxsim and serves until ctx ends. It writes the JSON log
// to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("nxsim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	addr := fs.String("addr", env("NXSIM_ADDR", "127.0.0.1:8091"), "listen address (NXSIM_ADDR)")
	size := fs.String("size", env("NXSIM_SIZE", "1000"), "devices of each tenant without its own size, 10 to 500000 (NXSIM_SIZE)")
	seed := fs.String("seed", env("NXSIM_SEED", "1"), "fleet seed (NXSIM_SEED)")
	topics := fs.String("topics", env("NXSIM_TOPICS", "topics"), "directory of topic YAML files with saved queries (NXSIM_TOPICS)")
	queries := fs.String("queries", env("NXSIM_QUERIES", "config/queries.yaml"), "file of generic saved queries (NXSIM_QUERIES)")
	tenants := fs.String("tenants", env("NXSIM_TENANTS", ""), "optional YAML tenants file (NXSIM_TENANTS); default tenants eu and us")
	ttl := fs.String("token-ttl", env("NXSIM_TOKEN_TTL", "900s"), "access token lifetime (NXSIM_TOKEN_TTL)")
	latency := fs.String("latency", env("NXSIM_LATENCY", "0s"), "fixed latency added to every Nexthink API call (NXSIM_LATENCY)")
	pending := fs.String("exec-pending", env("NXSIM_EXEC_PENDING", "1s"), "time a remote-action execution stays pending (NXSIM_EXEC_PENDING)")
	running := fs.String("exec-running", env("NXSIM_EXEC_RUNNING", "3s"), "time a remote-action execution runs (NXSIM_EXEC_RUNNING)")
	logLevel := fs.String("log-level", env("NXSIM_LOG_LEVEL", "info"), "debug, info, warn or error (NXSIM_LOG_LEVEL)")
	mode := fs.String("mode", env("NXSIM_MODE", "infinity"), "infinity (tenants with the NQL and Remote Actions APIs) or v6 (a V6 Portal on -addr\n"+
		"and Engines with the NXQL Web API on the next ports, or free ports when -addr's port is 0;\n"+
		"Basic credentials -v6-username and NXSIM_V6_PASSWORD, default nxsim-secret) (NXSIM_MODE)")
	engines := fs.String("engines", env("NXSIM_ENGINES", "2"), "Engines in v6 mode, 1 to 16 (NXSIM_ENGINES)")
	queryTimeout := fs.String("query-timeout", env("NXSIM_QUERY_TIMEOUT", "5s"), "bound of one NXQL query in v6 mode (NXSIM_QUERY_TIMEOUT)")
	v6User := fs.String("v6-username", env("NXSIM_V6_USERNAME", "nxsim"), "Basic user name of the v6 Portal and Engines (NXSIM_V6_USERNAME)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: %w", *logLevel, err)
	}
	cfg := nxsim.Config{
		Addr: *addr, TopicsDir: *topics, QueriesFile: *queries,
		Logger: slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level})),
	}
	var err error
	if cfg.FleetSize, err = strconv.Atoi(*size); err != nil {
		return fmt.Errorf("-size %q: %w", *size, err)
	}
	if cfg.Seed, err = strconv.ParseInt(*seed, 10, 64); err != nil {
		return fmt.Errorf("-seed %q: %w", *seed, err)
	}
	durations := []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"-token-ttl", *ttl, &cfg.TokenTTL}, {"-latency", *latency, &cfg.Latency},
		{"-exec-pending", *pending, &cfg.Executions.Pending}, {"-exec-running", *running, &cfg.Executions.Running},
	}
	for _, d := range durations {
		if *d.out, err = time.ParseDuration(d.in); err != nil {
			return fmt.Errorf("%s %q: %w", d.name, d.in, err)
		}
	}
	if *mode == "v6" {
		qt, err := time.ParseDuration(*queryTimeout)
		if err != nil || qt <= 0 {
			return fmt.Errorf("-query-timeout %q: want a positive duration", *queryTimeout)
		}
		return runV6(ctx, cfg, *engines, *v6User, env("NXSIM_V6_PASSWORD", "nxsim-secret"), qt)
	}
	if *mode != "infinity" {
		return fmt.Errorf("-mode %q: want infinity or v6", *mode)
	}
	if *tenants != "" {
		if cfg.Tenants, err = nxsim.LoadTenants(*tenants); err != nil {
			return err
		}
	}
	in, err := nxsim.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return in.Close()
}

// runV6 serves a V6 Portal on cfg.Addr and its Engines on the ports after it.
func runV6(ctx context.Context, cfg nxsim.Config, engines, user, password string, queryTimeout time.Duration) error {
	n, err := strconv.Atoi(engines)
	if err != nil {
		return fmt.Errorf("-engines %q: %w", engines, err)
	}
	host, portText, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port+n > 65535 {
		return fmt.Errorf("-addr %q: want a port that leaves room for %d engines after it", cfg.Addr, n)
	}
	vc := v6.Config{Engines: n, Host: host, PortalPort: port, FleetSize: cfg.FleetSize, Seed: cfg.Seed, QueryTimeout: queryTimeout,
		Username: user, Password: password, Executions: cfg.Executions, Logger: cfg.Logger}
	if port != 0 {
		for k := range n {
			vc.EnginePorts = append(vc.EnginePorts, port+1+k)
		}
	}
	s, err := v6.Start(ctx, vc)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
