package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// TestTextFor: the one place that chooses an event's text; every rendering uses it.
func TestTextFor(t *testing.T) {
	open := store.ProactiveEvent{ID: "pe_1", Status: store.ProactiveOpen, Message: "Outlook crashes on PC-1.", CloseMessage: "",
		Alert: []byte(`{}`), CreatedAt: time.Now()}
	closed := open
	closed.Status, closed.CloseMessage = store.ProactiveClosed, "Outlook is stable again."
	german := open
	german.Texts = []byte(`{"de":{"message":"Outlook stürzt auf PC-1 ab."}}`)
	for _, tc := range []struct {
		e      store.ProactiveEvent
		locale string
		want   string
	}{{open, "en", open.Message}, {open, "de-CH", open.Message}, {closed, "fr", closed.CloseMessage},
		{german, "de-CH", "Outlook stürzt auf PC-1 ab."}, {german, "fr", open.Message}} {
		if got := wire.TextFor(tc.e, tc.locale); got != tc.want {
			t.Errorf("%s in %s: got %q, want %q", tc.e.Status, tc.locale, got, tc.want)
		}
		raw, err := wire.ProactiveDelivery(tc.e, events.ProactiveOpened, 7, tc.locale)
		var doc events.ProactiveEventChanged
		if err != nil || json.Unmarshal(raw, &doc) != nil || doc.Event.Message != tc.want || doc.ID != "pd_7" {
			t.Errorf("delivery in %s: got %s %v", tc.locale, raw, err)
		}
		if got := wire.ProactiveEvent(tc.e).Message; got != wire.TextFor(tc.e, "en") {
			t.Errorf("feed: got %q", got)
		}
	}
}
