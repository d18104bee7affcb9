package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/dexbridge/dexbridge"

// serviceOf is the service a package belongs to ("poller" for
// .../services/poller/...), or "" for a package outside services/.
func serviceOf(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, module+"/services/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// crossServiceImports returns, for every package of a service that depends on a
// package of another service, directly or through packages outside services/, the
// chain of imports that leads there. imports maps each package to its imports.
func crossServiceImports(imports map[string][]string) []string {
	var found []string
	for _, from := range slices.Sorted(maps.Keys(imports)) {
		own := serviceOf(from)
		if own == "" {
			continue
		}
		// Breadth first, so the chain named is the shortest.
		prev := map[string]string{from: ""}
		queue := []string{from}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, next := range imports[p] {
				if _, seen := prev[next]; seen || !strings.HasPrefix(next, module+"/") {
					continue
				}
				prev[next] = p
				if s := serviceOf(next); s != "" && s != own {
					chain := []string{next}
					for q := p; q != ""; q = prev[q] {
						chain = append([]string{q}, chain...)
					}
					found = append(found, strings.Join(chain, " -> "))
					queue = nil
					break
				}
				if serviceOf(next) == "" {
					queue = append(queue, next)
				}
			}
		}
	}
	return found
}

// TestServicesTalkOnlyThroughTheContract reads the import graph of services/ (go
// list -deps) and fails, naming the imports, when a service's package depends on
// another service's package: services meet on NATS, through events, and share code
// through internal/. A service's own subpackages (discovery/discoverytest) may
// import it; tests may start several services.
func TestServicesTalkOnlyThroughTheContract(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the packages with")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", module+"/services/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		imports[p.ImportPath] = p.Imports
	}
	if len(imports) < 10 || serviceOf(module+"/services/poller") != "poller" {
		t.Fatalf("go list found %d packages: the check would see nothing", len(imports))
	}
	for _, chain := range crossServiceImports(imports) {
		t.Errorf("a service imports another: %s", chain)
	}
}

// TestCrossServiceImportsAreFound: the check names a direct import of another
// service and one through a shared package, and allows a service's own subpackage.
func TestCrossServiceImportsAreFound(t *testing.T) {
	p := func(s string) string { return module + "/" + s }
	imports := map[string][]string{
		p("services/poller"):                  {p("services/remoteactions"), "context"},
		p("services/remoteactions"):           {p("events"), p("internal/store")},
		p("services/devices"):                 {p("internal/app")},
		p("internal/app"):                     {p("services/topics")},
		p("services/discovery/discoverytest"): {p("services/discovery")},
		p("services/discovery"):               {p("events")},
		p("services/topics"):                  {p("events")},
		p("events"):                           {"time"},
		p("internal/store"):                   nil,
	}
	got := crossServiceImports(imports)
	want := []string{
		p("services/devices") + " -> " + p("internal/app") + " -> " + p("services/topics"),
		p("services/poller") + " -> " + p("services/remoteactions"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
