package topics_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/dexbridge/dexbridge/events"
)

// TestCatalogueServesPhrases: the catalogue says how employees speak of each topic,
// as the topic files declare it, in the list and for one topic.
func TestCatalogueServesPhrases(t *testing.T) {
	e := newEnv(t, envOptions{})
	var list struct {
		Topics []events.Topic `json:"topics"`
	}
	if resp := e.do(http.MethodGet, "/api/v1/topics", e.key, "", &list); resp.StatusCode != 200 || len(list.Topics) != 6 {
		t.Fatalf("got %d with %d topics", resp.StatusCode, len(list.Topics))
	}
	for _, tp := range list.Topics {
		if len(tp.Phrases) == 0 {
			t.Errorf("topic %s: no phrases in the catalogue", tp.ID)
		}
	}
	var one events.Topic
	resp := e.do(http.MethodGet, "/api/v1/topics/printing", e.key, "", &one)
	if resp.StatusCode != 200 || !slices.Contains(one.Phrases, "I cannot print anything") || !slices.Contains(one.Phrases, "The printer doesn't work") {
		t.Errorf("printing: got %d, phrases %q", resp.StatusCode, one.Phrases)
	}
}
