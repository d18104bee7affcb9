package events_test

import (
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/events"
)

func TestDedupeKeys(t *testing.T) {
	a := events.WebhookDedupeKey("nexthink", "", []byte(`{"a":1}`))
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"same body", events.WebhookDedupeKey("nexthink", "", []byte(`{"a":1}`)), true},
		{"other body", events.WebhookDedupeKey("nexthink", "", []byte(`{"a":2}`)), false},
		{"other source", events.WebhookDedupeKey("itsm", "", []byte(`{"a":1}`)), false},
		{"a delivery id", events.WebhookDedupeKey("nexthink", "d1", []byte(`{"a":1}`)), false},
	}
	for _, tt := range tests {
		if (tt.got == a) != tt.same {
			t.Errorf("%s: got %q vs %q, want same=%v", tt.name, tt.got, a, tt.same)
		}
	}
	if id := events.WebhookID(a); len(id) != 35 || !strings.HasPrefix(id, "wh_") {
		t.Errorf("webhook id %q: want wh_ and 32 hex digits", id)
	}
}
