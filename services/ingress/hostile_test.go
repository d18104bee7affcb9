package ingress_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/auth"
	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/internal/ratelimit"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// serve runs an ingress with o until the test ends, and returns the address it
// listens on.
func serve(t *testing.T, o ingress.Options) string {
	t.Helper()
	addrc := make(chan net.Addr, 1)
	o.OnListen = func(a net.Addr) { addrc <- a }
	svc := ingress.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress stopped with %v", err)
		}
	})
	return (<-addrc).String()
}

// TestHostileRequests sends a catalogue of abusive requests to a real listener and
// checks each gets a clean answer (or a closed connection where HTTP allows nothing
// else) and that the service keeps serving.
func TestHostileRequests(t *testing.T) {
	db := store.New(testenv.Postgres(t))
	addr := serve(t, ingress.Options{
		Listen:            "127.0.0.1:0",
		Keys:              auth.NewKeys(db),
		Credentials:       auth.NewCredentials([]auth.Credential{{Who: "admin", User: adminUser, Password: adminPass}}),
		Limiters:          ratelimit.NewShared(db),
		Log:               logging.Discard(),
		ShutdownTimeout:   5 * time.Second,
		ReadHeaderTimeout: 300 * time.Millisecond,
	})

	raw := func(t *testing.T, payload string, wait time.Duration) string {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, payload); err != nil {
			return "write refused: " + err.Error()
		}
		time.Sleep(wait)
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}

	tests := []struct {
		name    string
		payload string
		wait    time.Duration
		want    string // start of the status line; "" means the server closed the connection
	}{
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 0, "HTTP/1.1 400"},
		{"header flood", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Flood: "+strings.Repeat("a", 1000)+"\r\n", 200) + "\r\n", 0, "HTTP/1.1 431"},
		{"slow client", "GET /healthz HTTP/1.1\r\nHost: x\r\n", 600 * time.Millisecond, ""},
		{"huge declared body", "POST /api/v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Basic b3BlcmF0b3I6Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5\r\nContent-Type: application/json\r\nContent-Length: 5000000000\r\n\r\n{", 0, "HTTP/1.1 413"},
		{"bad path encoding", "GET /api/v1/topics/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 400"},
		{"path traversal", "GET /api/v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 301"},
		{"invalid method", "DESTROY /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, "HTTP/1.1 405"},
		{"http/0.9", "GET /healthz\r\n\r\n", 0, "HTTP/1.1 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := raw(t, tt.payload, tt.wait)
			if tt.want == "" {
				if strings.HasPrefix(got, "HTTP/1.1 2") {
					t.Errorf("got %q, want the connection cut off", got)
				}
				return
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", strings.TrimSpace(got), tt.want)
			}
		})
	}

	// Many concurrent junk connections (left half-sent) do not stop the service.
	for i := range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\n", i)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the catalogue: %v %v, want the service up", resp, err)
	}
	resp.Body.Close()
}
