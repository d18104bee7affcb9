// Package testenv gives tests real servers, never mocks:
//
//   - NATS: $NATS_URL if set, else an in-process nats-server with JetStream, one per test;
//   - PostgreSQL: $DATABASE_URL if set, else a testcontainers-go container when a Docker
//     engine answers, else the test is skipped with a one-line reason, or fails when
//     REQUIRE_SERVICES=1 (CI sets it, so a missing service is never silently skipped).
//
// Each test gets its own PostgreSQL schema and its own subject prefix, so tests run in
// parallel against shared servers without seeing each other.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Required reports whether missing services must fail tests instead of skipping them.
func Required() bool { return os.Getenv("REQUIRE_SERVICES") == "1" }

// unavailable skips or fails t, by REQUIRE_SERVICES.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("REQUIRE_SERVICES=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Prefix returns a subject prefix unique to this test ("t" and 12 hex digits).
func Prefix(t testing.TB) string {
	t.Helper()
	return "t" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NATSURL returns the URL of a NATS server with JetStream for t.
func NATSURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return StartNATS(t, t.TempDir()).ClientURL()
}

// StartNATS starts an in-process server storing JetStream data in dir; it stops
// when t ends. Tests restart a server on the same dir and port to check durability.
func StartNATS(t testing.TB, dir string) *server.Server {
	t.Helper()
	return StartNATSOnPort(t, dir, server.RANDOM_PORT)
}

// StartNATSOnPort is StartNATS on a given port (to restart a stopped server where
// its clients expect it).
func StartNATSOnPort(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true, SyncAlways: true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// NATS returns a connection to a NATS server for t, closed when t ends.
func NATS(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(NATSURL(t), nats.MaxReconnects(-1))
	if err != nil {
		unavailable(t, "nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RepoRoot is the module root, so tests can read topics/ and config/.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// sanitize makes a test name usable in an identifier.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 30 {
			break
		}
	}
	return b.String()
}
