package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/testenv"
)

// The linters chatbot platforms' users meet, pinned. swagger-parser 13 needs Node.js 22.
const (
	redoclyCLI    = "@redocly/cli@2.77.0"
	swaggerParser = "@apidevtools/swagger-parser@12.1.0"
)

// TestLintersAcceptTheDocuments runs Redocly's recommended rules on both documents and
// swagger-parser's validation on each, when Node.js is on the machine. Errors fail the test;
// Redocly's warnings are logged. The npm packages are cached outside the repository.
func TestLintersAcceptTheDocuments(t *testing.T) {
	t.Parallel() // one of the package's slow tests: they run side by side
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.Required() {
				t.Fatalf("REQUIRE_SERVICES=1: %s not found: %v", tool, err)
			}
			t.Skipf("%s not found: skipping Redocly and swagger-parser", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cache = filepath.Join(cache, "dexbridge-npm")
	// prefer-offline: the registry is asked only for what the cache lacks.
	env := append(os.Environ(), "npm_config_cache="+cache, "npm_config_prefer_offline=true",
		"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false",
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")

	dir := t.TempDir()
	docs := []string{"openapi.json", "openapi-v2.json"}
	for i, doc := range []func() ([]byte, error){OpenAPIJSON, SwaggerV2JSON} {
		raw, err := doc()
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, docs[i]), string(raw))
	}

	t.Run("redocly", func(t *testing.T) {
		args := []string{"--yes", redoclyCLI, "lint", "--extends", "recommended", "--format", "json"}
		for _, name := range docs {
			args = append(args, filepath.Join(dir, name))
		}
		stdout, stderr, err := run(dir, env, "npx", args...)
		// One report per document, in order.
		dec := json.NewDecoder(bytes.NewReader(stdout))
		for _, name := range docs {
			var report struct {
				Totals   struct{ Errors, Warnings int }
				Problems []struct {
					RuleID, Severity, Message string
					Location                  []struct{ Pointer string }
				}
			}
			if jerr := dec.Decode(&report); jerr != nil {
				t.Fatalf("%s: redocly: %v, %v\n%s", name, err, jerr, stderr)
			}
			for _, p := range report.Problems {
				at := ""
				if len(p.Location) > 0 {
					at = p.Location[0].Pointer
				}
				if p.Severity == "error" {
					t.Errorf("%s %s: %s (%s)", name, at, p.Message, p.RuleID)
				} else {
					t.Logf("%s %s: %s: %s (%s)", name, at, p.Severity, p.Message, p.RuleID)
				}
			}
			t.Logf("%s: redocly: %d errors, %d warnings", name, report.Totals.Errors, report.Totals.Warnings)
		}
		if err != nil && !t.Failed() {
			t.Errorf("redocly: %v\n%s", err, stderr)
		}
	})

	t.Run("swagger-parser", func(t *testing.T) {
		pkg := npmInstall(t, cache, env, swaggerParser)
		const validate = `const parser = require("@apidevtools/swagger-parser");
			(async () => {
				let failed = false;
				for (const file of process.argv.slice(1)) {
					await parser.validate(file).catch((e) => { failed = true; console.error(file + ": " + e.message); });
				}
				process.exit(failed ? 1 : 0);
			})();`
		args := []string{"-e", validate}
		for _, name := range docs {
			args = append(args, filepath.Join(dir, name))
		}
		// node -e resolves require from its working directory.
		if _, stderr, err := run(pkg, env, "node", args...); err != nil {
			t.Errorf("swagger-parser: %v\n%s", err, stderr)
		}
	})
}

// npmInstall installs spec (name@version) once into its own directory of cache and returns
// that directory. It installs beside it and renames, so a concurrent run never sees half.
func npmInstall(t *testing.T, cache string, env []string, spec string) string {
	t.Helper()
	dir := filepath.Join(cache, strings.NewReplacer("@", "", "/", "-").Replace(spec))
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, ".install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if _, stderr, err := run(tmp, env, "npm", "install", "--prefix", tmp, "--no-save", spec); err != nil {
		t.Fatalf("npm install %s: %v\n%s", spec, err, stderr)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "node_modules")); serr != nil {
			t.Fatalf("npm install %s: %v", spec, errors.Join(err, serr))
		}
	}
	return dir
}

func run(dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}
