package schemas

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/testenv"

	// The generated client's runtime: imported here so that go.mod and go.sum pin the
	// version the client builds with.
	_ "github.com/oapi-codegen/runtime"
)

// TestOpenAPIGeneratesAGoClient generates a Go client from /openapi.json with oapi-codegen
// (a tool of go.mod) and builds it in a module of its own that takes its versions from this
// one, with a method for every operation.
func TestOpenAPIGeneratesAGoClient(t *testing.T) {
	t.Parallel() // one of the package's slow tests: they run side by side
	root := testenv.RepoRoot(t)
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "client")
	write(t, filepath.Join(dir, "openapi.json"), string(spec))
	goCmd(t, root, nil, "tool", "oapi-codegen", "-generate", "types,client", "-package", "dexbridgeclient",
		"-o", filepath.Join(pkg, "client.go"), filepath.Join(dir, "openapi.json"))

	write(t, filepath.Join(pkg, "go.mod"), "module example.com/dexbridgeclient\n\ngo 1.26.0\n\n"+
		"require github.com/dexbridge/dexbridge v0.0.0\n\nreplace github.com/dexbridge/dexbridge => "+root+"\n")
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(pkg, "go.sum"), string(sum))
	// A method expression per operationId: the build fails if one has no method.
	var methods strings.Builder
	methods.WriteString("package dexbridgeclient\n\nvar _ = []any{\n")
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			methods.WriteString("\t(*ClientWithResponses)." + strings.ToUpper(op.OperationID[:1]) + op.OperationID[1:] + "WithResponse,\n")
		}
	}
	methods.WriteString("}\n")
	write(t, filepath.Join(pkg, "operations.go"), methods.String())
	// -mod=mod lets go add the client's requirement on the runtime, at this module's version.
	goCmd(t, pkg, []string{"GOFLAGS=-mod=mod"}, "vet", ".")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goCmd runs the go command in dir, outside any workspace, with env added.
func goCmd(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
