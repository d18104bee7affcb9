package nexthinkv6_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// exportHeader is the header of the discovery device export of one platform.
func exportHeader(t *testing.T, d *nexthinkv6.Driver) []string {
	t.Helper()
	var header []string
	err := d.Export(context.Background(), "#dexbridge_discovery_devices", map[string]string{"platform": "Windows"},
		func(h, _ []string) error { header = h; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return header
}

// TestExportHasTheEnginesDynamicFields: the device export carries the Engines'
// categories and scores under their NQL names.
func TestExportHasTheEnginesDynamicFields(t *testing.T) {
	s := startV6(t, 2)
	d, _ := newDriver(t, s, nil)
	header := exportHeader(t, d)
	for _, f := range fleet.DynamicFields() {
		if !slices.Contains(header, f) {
			t.Errorf("export header %v lacks %s", header, f)
		}
	}
}

// TestEngineRefusingTheWildcardIsDiscoveredWithoutIt: an Engine that refuses #*
// (one without categories or scores may) answers the device query without it,
// and is not marked down for it.
func TestEngineRefusingTheWildcardIsDiscoveredWithoutIt(t *testing.T) {
	s := startV6(t, 1)
	target, err := url.Parse(s.EngineURL(0))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int32
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if strings.Contains(r.Form.Get("query"), "#*") {
			refused.Add(1)
			http.Error(w, `no field of table device matches "#*"`, http.StatusBadRequest)
			return
		}
		body := r.PostForm.Encode()
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(engine.Close)
	d, _ := newDriver(t, s, func(c *nexthinkv6.Config) {
		c.Engines = []nexthinkv6.Engine{{Name: "engine-1", URL: engine.URL}}
	})
	header := exportHeader(t, d)
	if refused.Load() == 0 || !slices.Contains(header, "device.collector.uid") {
		t.Fatalf("refused %d times, header %v: want a refusal, then the devices", refused.Load(), header)
	}
	for _, f := range fleet.DynamicFields() {
		if slices.Contains(header, f) {
			t.Errorf("header has %s from an Engine that refused the wildcard", f)
		}
	}
	if h := d.Health(); len(h) != 1 || h[0].Down || h[0].Failures != 0 {
		t.Errorf("health %+v, want the Engine up: a refused query says nothing of it", h)
	}
}
