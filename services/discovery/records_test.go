package discovery

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDynamicColumnsAreCached: the export's dynamic-field columns join the cached
// fields, numbers as numbers only when written as such; a configured one is not
// repeated.
func TestDynamicColumnsAreCached(t *testing.T) {
	header := append(IdentificationFields(), "device.#cost_center", "device.score.health", "device.#code", "device.#department", "x.#y")
	dec, err := newDeviceDecoder(header, append(IdentificationFields(), "device.#department"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"device.#cost_center", "device.score.health", "device.#code"}; !reflect.DeepEqual(dec.dynamic, want) {
		t.Errorf("dynamic fields %v, want %v", dec.dynamic, want)
	}
	rec := make([]string, len(header))
	rec[0], rec[2] = "uid-1", "PC-1"
	copy(rec[len(IdentificationFields()):], []string{"CC 12", "7.5", "007", "IT", "z"})
	var got map[string]any
	if err := json.Unmarshal(dec.decode(rec).Fields, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"device.#cost_center": "CC 12", "device.score.health": 7.5, "device.#code": "007", "device.#department": "IT"} {
		if got[k] != want {
			t.Errorf("%s: got %#v, want %#v", k, got[k], want)
		}
	}
	if _, ok := got["x.#y"]; ok {
		t.Error("a column that is no device field was cached")
	}
}
