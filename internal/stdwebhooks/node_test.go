package stdwebhooks

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyJS verifies each message on stdin with the npm package standardwebhooks and
// prints one line per message: ok, or the error.
const verifyJS = `
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  for (const m of JSON.parse(input)) {
    try {
      new Webhook(m.secret).verify(Buffer.from(m.body, "base64"), m.headers);
      console.log("ok");
    } catch (e) {
      console.log("refused: " + e.message);
    }
  }
});
`

// TestTheNpmLibraryVerifies: the JavaScript implementation of the specification
// (npm standardwebhooks, run with node) accepts what Sign produces, and refuses a
// tampered body. It needs npm and the npm registry; it is
// skipped without them unless REQUIRE_SERVICES is set.
func TestTheNpmLibraryVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("REQUIRE_SERVICES") != "" {
			t.Fatal("npm is required (REQUIRE_SERVICES is set)")
		}
		t.Skip("no npm")
	}
	dir := t.TempDir()
	install := exec.Command(npm, "install", "--no-audit", "--no-fund", "--silent", "standardwebhooks@1.3.0")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "verify.js"), []byte(verifyJS), 0o600); err != nil {
		t.Fatal(err)
	}
	type message struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    []byte            `json:"body"`
	}
	var msgs []message
	// The library parses the body as JSON once verified, as dexbridge's bodies are.
	bodies := []string{`{"kind":"opened","event":{"message":"Grüezi — ça va?"}}`, `{}`, `{"a":"\u0000 \" \\"}`,
		`{"x":"` + strings.Repeat("x", 100000) + `"}`}
	for i, b := range bodies {
		secret, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		key, _ := Key(secret)
		h := http.Header{}
		Sign(h, key, "pd_"+string(rune('1'+i)), time.Now(), []byte(b))
		headers := map[string]string{HeaderID: h.Get(HeaderID), HeaderTimestamp: h.Get(HeaderTimestamp), HeaderSignature: h.Get(HeaderSignature)}
		msgs = append(msgs, message{secret, headers, []byte(b)})
	}
	tampered := msgs[0]
	tampered.Body = []byte(`{"kind":"closed"}`)
	msgs = append(msgs, tampered)
	in, _ := json.Marshal(msgs)
	node := exec.Command("node", "verify.js")
	node.Dir = dir
	node.Stdin = strings.NewReader(string(in))
	out, err := node.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("got %q", out)
	}
	for i, l := range lines[:len(bodies)] {
		if l != "ok" {
			t.Errorf("message %d: %s", i, l)
		}
	}
	if !strings.HasPrefix(lines[len(bodies)], "refused") {
		t.Errorf("tampered: got %q, want refused", lines[len(bodies)])
	}
}
