package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/dexbridge/dexbridge/internal/app"
	"github.com/nats-io/nats-server/v2/server"
)

// TestCompose loads compose.yaml as Docker Compose does (schema, interpolation,
// merges) and checks every service against what it runs: dexbridge processes name
// real commands and services, their configuration passes `dexbridge check` in the
// container's file system, they set only variables dexbridge reads, and every
// address they use is one a service of the file listens on.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	img := readImage(t)
	cmds := commands(t)
	c := composition{project: p, img: img, nats: map[string]*server.Options{}, postgres: map[string]map[string]string{}, nxsim: map[string]string{}}

	// The dependencies first: what the dexbridge processes are checked against.
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		switch c.kind(svc) {
		case "nats":
			t.Run(name, func(t *testing.T) { c.checkNATS(t, svc) })
		case "postgres":
			c.postgres[name] = env(svc)
		case "nxsim":
			t.Run(name, func(t *testing.T) { c.checkNxsim(t, svc) })
		}
	}
	ran := map[string]bool{}
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		switch kind := c.kind(svc); kind {
		case "dexbridge":
			services, err := servicesRun(cmds, svc.Command)
			for _, s := range services {
				ran[s] = true
			}
			t.Run(name, func(t *testing.T) {
				if err != nil {
					t.Errorf("command %q: %v", svc.Command, err)
				}
				c.checkDexbridge(t, svc, services)
			})
		case "nats", "postgres", "nxsim":
		default:
			t.Errorf("service %s: image %q runs %s, which this test does not know", name, svc.Image, kind)
		}
	}
	for _, s := range app.ServiceNames() {
		if !ran[s] {
			t.Errorf("no service of compose.yaml runs dexbridge's %s", s)
		}
	}
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		composecli.WithWorkingDirectory(root), composecli.WithName("dexbridge"), composecli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// composition is compose.yaml with what its dependencies were found to serve.
type composition struct {
	project  *types.Project
	img      image
	nats     map[string]*server.Options   // by service
	postgres map[string]map[string]string // by service: its environment
	nxsim    map[string]string            // by service: its -addr
}

// kind says what a service runs: the binary of this repository's image it starts,
// or the upstream image it is.
func (c composition) kind(svc types.ServiceConfig) string {
	if c.fromRepo(svc) {
		entry := []string(svc.Entrypoint)
		if len(entry) == 0 {
			entry = c.img.entrypoint
		}
		if !c.img.binaries[entry[0]] {
			return entry[0]
		}
		return path.Base(entry[0])
	}
	name, _, _ := strings.Cut(path.Base(svc.Image), ":")
	return name
}

// fromRepo says whether a service runs the image built from this repository.
func (c composition) fromRepo(svc types.ServiceConfig) bool {
	if svc.Build != nil {
		return true
	}
	for _, other := range c.project.Services {
		if other.Build != nil && other.Image == svc.Image {
			return true
		}
	}
	return false
}

func env(svc types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Environment {
		out[k] = ""
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// containerFS is the service's file system: the image's files when it runs this
// repository's image, its bind mounts, and its volumes (empty).
func (c composition) containerFS(t *testing.T, svc types.ServiceConfig) *containerFS {
	t.Helper()
	img := image{workdir: "/"}
	if c.fromRepo(svc) {
		img = c.img
	}
	fs := newContainerFS(t, img)
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind:
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("volume %s: %v", v.Target, err)
				continue
			}
			fs.addTree(t, v.Target, v.Source)
		default:
			fs.addVolume(t, v.Target, nil)
		}
	}
	return fs
}

// checkNATS loads the server's configuration with nats-server's own parser: JetStream
// on, every write synced, its store on a volume.
func (c composition) checkNATS(t *testing.T, svc types.ServiceConfig) {
	fs := c.containerFS(t, svc)
	args := []string(svc.Command)
	i := slices.IndexFunc(args, func(a string) bool { return a == "-c" || a == "--config" })
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("command %q names no configuration file (-c)", args)
	}
	if !fs.exists(args[i+1]) {
		t.Fatalf("configuration %s: not in the container", args[i+1])
	}
	opts := natsOptions(t, fs.host(args[i+1]), nil)
	checkJetStream(t, opts, func(dir string) bool {
		return slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume && v.Target == dir })
	})
	if svc.HealthCheck != nil && !svc.HealthCheck.Disable {
		if err := healthURL(svc.HealthCheck.Test, fmt.Sprint(opts.HTTPPort), func(p string) error {
			if q, _, _ := strings.Cut(p, "?"); q != "/healthz" {
				return fmt.Errorf("%q is not NATS's /healthz", p)
			}
			return nil
		}); err != nil {
			t.Errorf("healthcheck: %v", err)
		}
	}
	c.nats[svc.Name] = opts
}

// natsOptions parses a NATS configuration file as nats-server does, with env set
// for the variables it names ($POD_NAME).
func natsOptions(t *testing.T, file string, env map[string]string) *server.Options {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats-server -c %s: %v", filepath.Base(file), err)
	}
	return opts
}

// checkJetStream checks what dexbridge's guarantees need of NATS: JetStream, every
// write synced to disk before its ack, and the store on storage that outlives the
// container (onVolume).
func checkJetStream(t *testing.T, opts *server.Options, onVolume func(dir string) bool) {
	t.Helper()
	if !opts.JetStream {
		t.Error("JetStream is off: dexbridge's streams need it")
	}
	if !opts.SyncAlways {
		t.Error("jetstream.sync_interval is not always: an accepted webhook could be lost in a crash")
	}
	if !onVolume(opts.StoreDir) {
		t.Errorf("jetstream.store_dir %q is not on a volume: the streams would not outlive the container", opts.StoreDir)
	}
}

// checkNxsim checks the tenant emulator's command line against its own flags.
func (c composition) checkNxsim(t *testing.T, svc types.ServiceConfig) {
	fs := c.containerFS(t, svc)
	flags := nxsimFlags(t)
	args := []string(svc.Command)
	for i := 0; i < len(args); i++ {
		name, value, inline := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		usage, ok := flags[name]
		if !strings.HasPrefix(args[i], "-") || !ok {
			t.Errorf("%q is not an nxsim flag (%s)", args[i], strings.Join(sortedKeys(flags), ", "))
			continue
		}
		if !inline {
			if i+1 == len(args) {
				t.Errorf("-%s has no value", name)
				continue
			}
			i++
			value = args[i]
		}
		if name == "addr" {
			c.nxsim[svc.Name] = value
		}
		if (strings.Contains(usage, "file") || strings.Contains(usage, "directory")) && !fs.exists(value) {
			t.Errorf("-%s %s: not in the container", name, value)
		}
	}
	if _, ok := c.nxsim[svc.Name]; !ok {
		c.nxsim[svc.Name] = flagDefault(flags["addr"])
	}
}

// nxsimFlags builds nxsim and reads its flags from `nxsim -h`: name to usage.
func nxsimFlags(t *testing.T) map[string]string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nxsim")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/nxsim")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nxsim: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("nxsim -h: %v\n%s", err, out)
	}
	flags := map[string]string{}
	var last string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			last = strings.TrimPrefix(strings.Fields(line)[0], "-")
			flags[last] = ""
		case strings.HasPrefix(line, "    \t") && last != "":
			flags[last] += strings.TrimSpace(line)
		}
	}
	if len(flags) == 0 {
		t.Fatalf("nxsim -h lists no flags:\n%s", out)
	}
	return flags
}

// flagDefault is the default a flag's usage line gives.
func flagDefault(usage string) string {
	_, d, _ := strings.Cut(usage, `(default "`)
	d, _, _ = strings.Cut(d, `"`)
	return d
}

// checkDexbridge checks one dexbridge service, which runs services.
func (c composition) checkDexbridge(t *testing.T, svc types.ServiceConfig, services []string) {
	proc := process{fs: c.containerFS(t, svc), env: env(svc), args: svc.Command, services: services}
	chk, h, ok := proc.check(t)
	if !ok {
		return
	}
	if slices.Contains(services, "ingress") {
		for _, port := range svc.Ports {
			if fmt.Sprint(port.Target) != h.port {
				t.Errorf("port %s:%d: the ingress listens on %s", port.Published, port.Target, h.port)
			}
		}
	}
	if svc.HealthCheck != nil && !svc.HealthCheck.Disable {
		if err := c.healthcheckRuns(svc); err != nil {
			t.Errorf("healthcheck: %v", err)
		}
		kind := "readiness"
		if err := healthURL(svc.HealthCheck.Test, h.port, func(p string) error { return probePath(kind, p) }); err != nil {
			t.Errorf("healthcheck: %v", err)
		}
	}
	c.checkAddresses(t, chk)
	c.checkStartOrder(t, svc, chk)
}

// checkStartOrder checks that a dexbridge service starts once NATS and PostgreSQL
// answer: dexbridge does not wait for them at start, it exits (and is restarted).
func (c composition) checkStartOrder(t *testing.T, svc types.ServiceConfig, chk checked) {
	t.Helper()
	nats, _ := url.Parse(chk.cfg.NATS.URL)
	db, _ := url.Parse(chk.cfg.DatabaseURL.Reveal())
	for _, dep := range []string{nats.Hostname(), db.Hostname()} {
		d, ok := svc.DependsOn[dep]
		switch {
		case !ok:
			t.Errorf("depends_on: not on %s, which dexbridge needs at start", dep)
		case d.Condition != types.ServiceConditionHealthy:
			t.Errorf("depends_on: %s is %s; want service_healthy: dexbridge exits when %s does not answer at start", dep, d.Condition, dep)
		case c.project.Services[dep].HealthCheck == nil:
			t.Errorf("depends_on: %s has no healthcheck to wait for", dep)
		}
	}
}

// healthcheckRuns checks that the healthcheck's program is in the image: the
// dexbridge image holds its binaries and nothing else, no shell and no curl.
func (c composition) healthcheckRuns(svc types.ServiceConfig) error {
	test := []string(svc.HealthCheck.Test)
	if len(test) < 2 || test[0] != "CMD" {
		return fmt.Errorf("%q: the image has no shell, so only the CMD form can run", test)
	}
	if !c.img.binaries[test[1]] {
		return fmt.Errorf("%s is not in the image (only %s)", test[1], strings.Join(sortedKeys(c.img.binaries), ", "))
	}
	return nil
}

// healthURL finds the URL in a healthcheck's command and checks its port and path.
func healthURL(test []string, port string, checkPath func(string) error) error {
	for _, word := range test {
		for _, f := range strings.Fields(word) {
			u, err := url.Parse(f)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				continue
			}
			if u.Port() != port {
				return fmt.Errorf("%s: the process serves its health on port %s", f, port)
			}
			return checkPath(u.RequestURI())
		}
	}
	return fmt.Errorf("%q calls no http URL", test)
}

// checkAddresses checks that the NATS server, the database and the Nexthink
// instances a dexbridge process uses are services of the file, on the ports they
// serve, with the database's own credentials.
func (c composition) checkAddresses(t *testing.T, chk checked) {
	t.Helper()
	cfg := chk.cfg
	if cfg.NATS.URL == "" {
		t.Error("nats.url (NATS_URL) is unset: each container would start its own NATS")
	} else if err := c.serves(cfg.NATS.URL, func(name string) (string, bool) {
		o, ok := c.nats[name]
		if !ok {
			return "", false
		}
		return fmt.Sprint(o.Port), true
	}); err != nil {
		t.Errorf("nats.url: %v", err)
	}

	db, err := url.Parse(cfg.DatabaseURL.Reveal())
	if err != nil {
		t.Fatalf("database_url: %v", err)
	}
	pg, ok := c.postgres[db.Hostname()]
	if !ok {
		t.Errorf("database_url: host %s is no PostgreSQL service of compose.yaml", db.Hostname())
	} else {
		password, _ := db.User.Password()
		for _, f := range []struct{ what, got, want string }{
			{"port", db.Port(), "5432"},
			{"user", db.User.Username(), pg["POSTGRES_USER"]},
			{"password", password, pg["POSTGRES_PASSWORD"]},
			{"database", strings.TrimPrefix(db.Path, "/"), pg["POSTGRES_DB"]},
		} {
			if f.got != f.want {
				t.Errorf("database_url: %s %q, the %s service has %q", f.what, f.got, db.Hostname(), f.want)
			}
		}
	}

	nxsimPort := func(name string) (string, bool) {
		addr, ok := c.nxsim[name]
		if !ok {
			return "", false
		}
		_, port, _ := net.SplitHostPort(addr)
		return port, true
	}
	for i, in := range cfg.Instances {
		for _, u := range []struct{ key, v string }{{"api_url", in.APIURL}, {"token_url", in.TokenURL}} {
			if err := c.serves(u.v, nxsimPort); err != nil {
				t.Errorf("instances[%d].%s: %v", i, u.key, err)
			}
		}
	}
}

// serves checks that the URL's host is a service whose port (from portOf) is the
// URL's.
func (c composition) serves(raw string, portOf func(service string) (string, bool)) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	port, ok := portOf(u.Hostname())
	if !ok {
		return fmt.Errorf("%s: host %s is no service of compose.yaml that serves it", raw, u.Hostname())
	}
	got := u.Port()
	if got == "" {
		got = map[string]string{"nats": "4222", "http": "80", "https": "443"}[u.Scheme]
	}
	if got != port {
		return errors.New(raw + ": the service listens on port " + port)
	}
	return nil
}
