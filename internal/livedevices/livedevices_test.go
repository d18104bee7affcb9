package livedevices

import (
	"os"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/nql"
)

// TestLiveQueriesAreSaved: every query identification falls back to is in
// config/queries.yaml (which operators save in the tenant and nxsim loads), compiles,
// takes the parameter identification passes and lists what a device answer needs.
func TestLiveQueriesAreSaved(t *testing.T) {
	raw, err := os.ReadFile("../../config/queries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Queries []struct {
			ID  string `yaml:"id"`
			NQL string `yaml:"nql"`
		} `yaml:"queries"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	saved := map[string]string{}
	for _, q := range doc.Queries {
		saved[q.ID] = q.NQL
	}
	for _, key := range events.IdentifierKeys() {
		id, ok := queries[key]
		if !ok {
			t.Errorf("%s: no live query", key)
			continue
		}
		text, ok := saved[id.id]
		if !ok {
			t.Errorf("%s: query %s is not in config/queries.yaml", key, id.id)
			continue
		}
		p, err := nql.Compile(text, nil)
		if err != nil {
			t.Errorf("%s: %v", id.id, err)
			continue
		}
		a := p.Analysis()
		if !slices.Equal(a.Parameters, []string{id.param}) {
			t.Errorf("%s: parameters %v, want [%s]", id.id, a.Parameters, id.param)
		}
		for _, h := range []string{"device.collector.uid", "device.name", "device.last_seen"} {
			if !slices.Contains(a.Headers, h) {
				t.Errorf("%s: lists %v, want %s among them", id.id, a.Headers, h)
			}
		}
	}
}

func TestLiveDevice(t *testing.T) {
	row := map[string]any{"device.collector.uid": "CF05120D-508A-4B9F-A596-6C3865D118A1", "device.name": "PC-1",
		"device.operating_system.platform": "Windows", "device.last_seen": "2026-01-02 03:04:05", "last_activity": nil}
	d, ok := liveDevice(row, "eu", events.KeyUPN)
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !ok || d.CollectorUID != "cf05120d-508a-4b9f-a596-6c3865d118a1" || d.Instance != "eu" || d.MatchedBy != events.KeyUPN ||
		d.LastSeen == nil || !d.LastSeen.Equal(want) || d.LastActivity != nil || d.ActivitySource != "" {
		t.Errorf("got %+v, %v", d, ok)
	}
	if _, ok := liveDevice(map[string]any{"device.name": "PC-1"}, "eu", events.KeyUPN); ok {
		t.Error("a row without a collector UID: got a device")
	}
	a, b := want, want.Add(time.Hour)
	devs := []events.Device{{Name: "none"}, {Name: "old", LastActivity: &a}, {Name: "new", LastActivity: &b}}
	slices.SortStableFunc(devs, func(x, y events.Device) int { return cmpTimeDesc(x.LastActivity, y.LastActivity) })
	if got := []string{devs[0].Name, devs[1].Name, devs[2].Name}; !slices.Equal(got, []string{"new", "old", "none"}) {
		t.Errorf("order: got %v, want most recent first, unknown last", got)
	}
}
