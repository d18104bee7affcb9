package nexthinkv6_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	v6 "github.com/dexbridge/dexbridge/internal/nxsim/v6"
)

// heldBody passes on the first n bytes of an Engine's answer, then holds the
// rest until release is closed (or a minute passes, which the test reports).
type heldBody struct {
	io.ReadCloser
	n       int
	release <-chan struct{}
	held    *atomic.Bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		select {
		case <-b.release:
		case <-time.After(time.Minute):
			b.held.Store(true)
		}
		return b.ReadCloser.Read(p)
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	k, err := b.ReadCloser.Read(p)
	b.n -= k
	return k, err
}

// TestExportStreamsRowByRow: the first exported row reaches the consumer while
// the Engines' answers are still being sent (each Engine is held after its first
// 16 KiB until then), so an export holds rows as they pass, not the whole
// fleet; every device is still exported once.
func TestExportStreamsRowByRow(t *testing.T) {
	s, err := v6.Start(context.Background(), v6.Config{Engines: 2, FleetSize: 3000, Seed: time.Now().UnixNano()%1000 + 1,
		Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	first := make(chan struct{})
	var held atomic.Bool
	var engines []nexthinkv6.Engine
	for k, e := range s.Info().Engines {
		target, _ := url.Parse(s.EngineURL(k))
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ModifyResponse = func(r *http.Response) error {
			if r.StatusCode == http.StatusOK {
				r.Body = &heldBody{ReadCloser: r.Body, n: 16 << 10, release: first, held: &held}
			}
			return nil
		}
		proxy.FlushInterval = -1
		front := httptest.NewServer(proxy)
		t.Cleanup(front.Close)
		engines = append(engines, nexthinkv6.Engine{Name: e.Name, URL: front.URL, UID: e.UID})
	}
	d, _ := newDriver(t, s, func(c *nexthinkv6.Config) { c.Engines = engines })
	seen := map[string]int{}
	rows := 0
	for _, p := range []string{"Windows", "macOS"} {
		err := d.Export(context.Background(), "#dexbridge_discovery_devices", map[string]string{"platform": p}, func(h, rec []string) error {
			if rows == 0 {
				close(first)
			}
			rows++
			for k, c := range h {
				if c == "device.collector.uid" {
					seen[strings.ToLower(rec[k])]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if held.Load() {
		t.Fatal("the first row reached the consumer only after the Engines had sent their whole answers")
	}
	if rows < 1000 {
		t.Fatalf("%d rows exported: the answers are too small to test streaming", rows)
	}
	for uid, n := range seen {
		if n != 1 {
			t.Errorf("%s exported %d times", uid, n)
		}
	}
	for _, m := range s.Info().Moved {
		if got, _ := d.RouteOf(m.CollectorUID); got != m.To && seen[strings.ToLower(m.CollectorUID)] == 1 {
			t.Errorf("moved %s routed to %q, want %s", m.Name, got, m.To)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
