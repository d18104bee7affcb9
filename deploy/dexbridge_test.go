package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/dexbridge/dexbridge/internal/cli"
	"github.com/dexbridge/dexbridge/internal/config"
	"github.com/dexbridge/dexbridge/internal/webhookmap"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// The deployment files are checked against what the dexbridge binary itself knows,
// asked of its own packages, so that a renamed command, service, variable or
// endpoint breaks these tests rather than a deployment.

// commands are dexbridge's subcommands, as `dexbridge help` lists them.
func commands(t *testing.T) map[string]bool {
	t.Helper()
	var out bytes.Buffer
	if err := cli.Run(context.Background(), []string{"help"}, cli.Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("dexbridge help: %v", err)
	}
	cmds := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "dexbridge" {
			cmds[f[1]] = true
		}
	}
	if !cmds["run"] || !cmds["check"] {
		t.Fatalf("dexbridge help lists no run or check command:\n%s", out.String())
	}
	return cmds
}

// servicesRun checks a dexbridge command line (the arguments after the binary) and
// returns the services it runs: none for a command other than run, every service
// for a bare run.
func servicesRun(cmds map[string]bool, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no command: dexbridge would print its usage and exit 2")
	}
	if !cmds[args[0]] {
		return nil, fmt.Errorf("%q is not a dexbridge command (%s)", args[0], strings.Join(sortedKeys(cmds), ", "))
	}
	if args[0] != "run" {
		return nil, nil
	}
	rest := args[1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		name, _, inline := strings.Cut(strings.TrimLeft(rest[0], "-"), "=")
		switch {
		case name != "config":
			return nil, fmt.Errorf("run has no flag %s (only -config)", rest[0])
		case inline:
			rest = rest[1:]
		case len(rest) < 2:
			return nil, errors.New("-config without a file")
		default:
			rest = rest[2:]
		}
	}
	if len(rest) == 0 {
		return app.ServiceNames(), nil
	}
	var errs []error
	for i, s := range rest {
		if !slices.Contains(app.ServiceNames(), s) {
			errs = append(errs, fmt.Errorf("%q is not a dexbridge service (%s)", s, strings.Join(app.ServiceNames(), ", ")))
		}
		if slices.Contains(rest[:i], s) {
			errs = append(errs, fmt.Errorf("service %q named twice", s))
		}
	}
	return rest, errors.Join(errs...)
}

// configFlag is the -config a run or check command line names, if any.
func configFlag(args []string) string {
	for i, a := range args {
		name, value, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if inline {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// process is one dexbridge process as a deployment file describes it: its file
// system, its environment (container values) and its arguments.
type process struct {
	fs       *containerFS
	env      map[string]string
	args     []string
	services []string // what args run
}

// checked is a process's configuration as dexbridge loaded it, and the webhook
// sources it serves.
type checked struct {
	cfg     config.Config
	sources []*webhookmap.Source
}

// check checks the process (see problems) and reports what it finds; ok says
// whether the process got as far as a health address to probe.
func (p process) check(t *testing.T) (c checked, h health, ok bool) {
	t.Helper()
	c, errs := p.problems(t)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 || len(p.services) == 0 {
		return c, h, false
	}
	h, err := c.health(p.services)
	if err != nil {
		t.Error(err)
		return c, h, false
	}
	return c, h, true
}

// problems runs `dexbridge check` in the process's file system with its
// environment, then loads the configuration as `dexbridge run` would, and checks
// what check does not read: the files named only for other processes (TLS) and that
// every variable set is one dexbridge reads. It changes the working directory, so
// callers do not run in parallel.
func (p process) problems(t *testing.T) (checked, []error) {
	t.Helper()
	path := configFlag(p.args)
	if path == "" {
		path = p.env["DEXBRIDGE_CONFIG"]
	}
	if path == "" {
		path = "config/dexbridge.yaml" // dexbridge's default, when present
	}
	if !p.fs.exists(path) {
		return checked{}, []error{fmt.Errorf("configuration %s: not in the container (neither in the image nor mounted)", path)}
	}
	p.fs.rewritePaths(t)
	t.Chdir(p.fs.host(p.fs.workdir))
	getenv := func(k string) string { return p.fs.translate(p.env[k]) }
	var out bytes.Buffer
	err := cli.Run(context.Background(), []string{"check", "-config", p.fs.host(path)}, cli.Env{Getenv: getenv, Stdout: &out, Stderr: &out})
	if err != nil {
		return checked{}, []error{fmt.Errorf("dexbridge check -config %s: %w", path, p.fs.inContainer(err))}
	}
	cfg, err := config.Load(p.fs.host(path), getenv)
	if err != nil {
		return checked{}, []error{p.fs.inContainer(err)}
	}
	c := checked{cfg: cfg}
	var errs []error
	// As dexbridge does: the default webhooks file missing means no webhooks.
	_, statErr := os.Stat(cfg.Webhooks.File)
	if !errors.Is(statErr, fs.ErrNotExist) || cfg.Webhooks.File != config.Default().Webhooks.File {
		rules, err := webhookmap.Load(cfg.Webhooks.File, getenv)
		if err != nil {
			return checked{}, []error{p.fs.inContainer(err)}
		}
		c.sources = rules.Sources()
		for _, s := range c.sources {
			// Only the ingress authenticates senders: without the secret it answers 404.
			if s.Disabled != "" && slices.Contains(p.services, "ingress") {
				errs = append(errs, fmt.Errorf("webhook source %s is disabled: %s", s.Name, s.Disabled))
			}
		}
	}
	for _, f := range []struct{ key, path string }{
		{"tls.cert_file", cfg.TLS.CertFile}, {"tls.key_file", cfg.TLS.KeyFile}, {"cached_fields_file", cfg.CachedFieldsFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, p.fs.inContainer(err)))
		}
	}
	read := c.variablesRead()
	for _, name := range sortedKeys(p.env) {
		if !read[name] {
			errs = append(errs, fmt.Errorf("variable %s: dexbridge does not read it", name))
		}
	}
	return c, errs
}

// variablesRead are the environment variables a dexbridge process with this
// configuration reads: the configuration's, the instances' credentials, the webhook
// sources' secrets, and the Go runtime's.
func (c checked) variablesRead() map[string]bool {
	read := map[string]bool{"DEXBRIDGE_CONFIG": true}
	for _, v := range config.Variables() {
		read[v.Name] = true
	}
	for _, in := range c.cfg.Instances {
		read[config.CredentialEnv(in.Name, "CLIENT_ID")] = true
		read[config.CredentialEnv(in.Name, "CLIENT_SECRET")] = true
	}
	for _, s := range c.sources {
		for _, part := range []string{"PASSWORD", "TOKEN", "SIGNING_SECRET"} {
			read[webhookmap.SecretEnv(s.Name, part)] = true
		}
	}
	for _, v := range []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "GOTRACEBACK"} {
		read[v] = true
	}
	return read
}

// health is where a process serves /healthz and /readyz: the ingress's listener
// when it runs the ingress, else the admin listener of metrics_listen
// (internal/app/admin.go).
type health struct {
	key   string // the configuration key of the address
	port  string
	https bool
}

func (c checked) health(services []string) (health, error) {
	h := health{key: "metrics_listen (METRICS_ADDR)"}
	addr := c.cfg.MetricsListen
	if slices.Contains(services, "ingress") {
		h.key, addr, h.https = "listen (LISTEN_ADDR)", c.cfg.Listen, c.cfg.TLS.CertFile != ""
	}
	host, port, err := net.SplitHostPort(addr)
	switch {
	case addr == "":
		return h, fmt.Errorf("%s is unset: the process serves its health on a random port", h.key)
	case err != nil:
		return h, fmt.Errorf("%s %q: %w", h.key, addr, err)
	case port == "0":
		return h, fmt.Errorf("%s %q: a random port cannot be probed", h.key, addr)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return h, fmt.Errorf("%s %q: reachable only inside the container; listen on 0.0.0.0", h.key, addr)
	}
	h.port = port
	return h, nil
}

// probePath checks that path (a liveness or readiness probe's) is the endpoint that
// kind of probe needs and that dexbridge's health handler answers it.
func probePath(kind, path string) error {
	want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[kind]
	if p, _, _ := strings.Cut(path, "?"); p != want {
		// /healthz checks nothing but the process, so a database outage restarts
		// nothing; /readyz checks NATS and PostgreSQL.
		return fmt.Errorf("%s probe on %q, want %s", kind, path, want)
	}
	h := ingress.NewHandler(ingress.Options{Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s probe on %q: dexbridge answers %d", kind, path, rec.Code)
	}
	return nil
}
