package nexthinkv6_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/dexbridge/dexbridge/internal/nexthinkv6"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// listMemory is a Memory that keeps only the Engine lists it is given.
type listMemory struct {
	mu    sync.Mutex
	lists [][]string
}

func (m *listMemory) Routes(context.Context, string, []string) (map[string]nexthinkv6.StoredRoute, error) {
	return nil, nil
}
func (m *listMemory) SaveRoutes(context.Context, string, []nexthinkv6.StoredRoute) error { return nil }
func (m *listMemory) SaveEngine(context.Context, string, nexthinkv6.EngineHealth) error  { return nil }
func (m *listMemory) ListEngines(_ context.Context, instance string, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists = append(m.lists, append([]string{instance}, names...))
	return nil
}

func (m *listMemory) got() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.lists)
}

// TestEngineListRecorded: the Engines the Portal lists are recorded in Memory as
// soon as the list is read, so the status names an Engine no call has reached; a
// configured list is known before any call.
func TestEngineListRecorded(t *testing.T) {
	s := startV6(t, 3)
	mem := &listMemory{}
	d, _ := newDriver(t, s, func(c *nexthinkv6.Config) { c.Memory = mem })
	if got := d.Engines(); len(got) != 0 {
		t.Errorf("before the Portal's list is read: got %v, want none", got)
	}
	ctx := context.Background()
	dev := sample(t, s, 2)
	for _, x := range dev {
		if _, err := d.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": x.Name}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, e := range s.Info().Engines {
		want = append(want, e.Name)
	}
	if got := d.Engines(); !slices.Equal(got, want) {
		t.Errorf("engines: got %v, want %v", got, want)
	}
	testenv.Eventually(t, "the Portal's list recorded", func() bool { return len(mem.got()) > 0 })
	if got := mem.got(); len(got) != 1 || !slices.Equal(got[0], append([]string{"dc"}, want...)) {
		t.Errorf("lists recorded: got %v, want dc's %v once", got, want)
	}

	// Configured: the Engines of the installation under other names, in another order.
	var configured []nexthinkv6.Engine
	for _, e := range slices.Backward(s.Info().Engines) {
		configured = append(configured, nexthinkv6.Engine{Name: "x-" + e.Name, URL: "http://" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port))})
	}
	fixedMem := &listMemory{}
	fixed, _ := newDriver(t, s, func(c *nexthinkv6.Config) { c.Engines, c.Memory = configured, fixedMem })
	want = []string{"x-engine-3", "x-engine-2", "x-engine-1"}
	if got := fixed.Engines(); !slices.Equal(got, want) {
		t.Errorf("configured engines, before any call: got %v, want %v", got, want)
	}
	for _, x := range dev {
		if _, err := fixed.Execute(ctx, "#get_device_basic_infos_by_device_name", map[string]string{"device_name": x.Name}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "the configured list recorded", func() bool { return len(fixedMem.got()) > 0 })
	if got := fixedMem.got(); len(got) != 1 || !slices.Equal(got[0], append([]string{"dc"}, want...)) {
		t.Errorf("configured lists recorded: got %v, want dc's %v once", got, want)
	}
}
