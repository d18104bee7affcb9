package nexthink

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/problem"
)

const exportQuery = "devices | list name, collector.uid, operating_system.platform, last_seen"

// fileWatch is a round tripper that watches results file downloads: the headers sent,
// the content type received, and how many body bytes the client has read.
type fileWatch struct {
	base        http.RoundTripper
	mu          sync.Mutex
	auth        []string // Authorization header of each download
	contentType string
	length      int64
	read        atomic.Int64
}

func (w *fileWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.base.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/_files/exports/") {
		return resp, err
	}
	w.mu.Lock()
	w.auth = append(w.auth, r.Header.Get("Authorization"))
	w.contentType, w.length = resp.Header.Get("Content-Type"), resp.ContentLength
	w.mu.Unlock()
	resp.Body = countingBody{resp.Body, &w.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Export of a 20 000-device fleet: every row exactly once, gzip, no bearer token on
// the download, and records handed over while the file is still arriving.
func TestExportStreamsEveryRowOnce(t *testing.T) {
	t.Parallel()
	sim := startSim(t, func(c *nxsim.Config) {
		c.Tenants = []nxsim.TenantConfig{{Name: "eu", Size: 20000}}
		c.Queries = map[string]string{"#export_devices": exportQuery}
	})
	info := simInfo(t, sim, "eu")
	watch := &fileWatch{base: newTransport(t)}
	c := newClient(t, sim, "eu", "eu-client", func(c *Config) { c.HTTPClient = &http.Client{Transport: watch} })

	seen := make(map[string]int, info.Devices)
	var header []string
	var readAtFirst int64
	var heapBefore, heapPeak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)
	heapPeak = heapBefore
	err := c.Export(context.Background(), "#export_devices", nil, func(h, rec []string) error {
		if header == nil {
			header = slices.Clone(h)
			readAtFirst = watch.read.Load()
		}
		if len(rec) != len(h) {
			t.Fatalf("record %v: got %d fields, want %d", rec, len(rec), len(h))
		}
		seenAt, ok := ParseTime(rec[3])
		if !ok {
			t.Fatalf("record %v: last_seen %q is not a time", rec, rec[3])
		}
		if rec[0] == "PC-HEALTHY" { // seen 5 minutes ago; a zone shift would be hours
			if ago := time.Since(seenAt); ago < 4*time.Minute || ago > 7*time.Minute {
				t.Errorf("PC-HEALTHY: last seen %v ago, want 5 minutes (UTC times)", ago)
			}
		}
		seen[rec[0]]++
		if len(seen)%5000 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > heapPeak.HeapAlloc {
				heapPeak = m
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	wantHeader := []string{"device.name", "device.collector.uid", "device.operating_system.platform", "device.last_seen"}
	if !slices.Equal(header, wantHeader) {
		t.Errorf("header: got %v, want %v", header, wantHeader)
	}
	if len(seen) != info.Devices {
		t.Errorf("got %d distinct devices, want %d", len(seen), info.Devices)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("device %s: got %d records, want 1", name, n)
		}
	}
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if len(watch.auth) != 1 || watch.auth[0] != "" {
		t.Errorf("downloads: got Authorization %q, want one download without it", watch.auth)
	}
	if watch.contentType != "application/gzip" {
		t.Errorf("results file: got %q, want application/gzip", watch.contentType)
	}
	if watch.length <= 0 || readAtFirst >= watch.length/2 {
		t.Errorf("first record after %d of %d bytes, want it while the file still streams", readAtFirst, watch.length)
	}
	t.Logf("%d records, results file %d bytes (gzip), first record after %d bytes, heap %d KiB before, %d KiB at most during",
		len(seen), watch.length, readAtFirst, heapBefore.HeapAlloc>>10, heapPeak.HeapAlloc>>10)
	got := counters(t, sim, "eu")
	if got.Endpoints[epExport] != 1 || got.Endpoints[epFile] != 1 || got.Endpoints[epStatus] < 1 {
		t.Errorf("nxsim counted %v, want one submit, one download and status polls", got.Endpoints)
	}
}

func TestExportFailures(t *testing.T) {
	t.Parallel()
	errStop := errors.New("stop here")
	tests := []struct {
		name     string
		settings *nxsim.ExportSettings
		query    string
		stopAt   int // the callback fails at this record; 0 never
		records  int
		check    func(error) bool
		code     problem.Code
	}{
		{"export error", &nxsim.ExportSettings{DelayMS: 10, Fail: true}, "#export_devices", 0, 0,
			func(err error) bool { var e *Error; return errors.As(err, &e) && e.Code == CodeExportFailed }, problem.UpstreamUnavailable},
		{"licence cut", &nxsim.ExportSettings{DelayMS: 10, RowLimit: 10}, "#export_devices", 0, 10,
			func(err error) bool { return errors.Is(err, ErrPartial) }, problem.UpstreamUnavailable},
		{"unknown query", nil, "#no_such_export", 0, 0,
			func(err error) bool { var e *Error; return errors.As(err, &e) && e.Status == 404 }, problem.NotFound},
		{"callback error", nil, "#export_devices", 5, 4,
			func(err error) bool { return errors.Is(err, errStop) }, problem.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, func(c *nxsim.Config) { c.Queries = map[string]string{"#export_devices": exportQuery} })
			if tt.settings != nil {
				setExportSettings(t, sim, "eu", *tt.settings)
			}
			c := newClient(t, sim, "eu", "eu-client", nil)
			n := 0
			err := c.Export(context.Background(), tt.query, nil, func(_, _ []string) error {
				if n+1 == tt.stopAt {
					return errStop
				}
				n++
				return nil
			})
			if !tt.check(err) {
				t.Fatalf("got %v", err)
			}
			if n != tt.records {
				t.Errorf("got %d records, want %d", n, tt.records)
			}
			if p := Problem(err); p.Code != tt.code {
				t.Errorf("problem: got %s, want %s", p.Code, tt.code)
			}
			if !strings.Contains(err.Error(), "nexthink instance eu: nql.export") {
				t.Errorf("error %q does not name the instance and the call", err)
			}
		})
	}
}
