package callbacktest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/wire"
)

// Record opens one proactive event per user, as the webhooks worker would, with a
// callback delivery each: the input a test's dispatcher or feed then works on.
func Record(t testing.TB, db *store.DB, users ...string) []store.ProactiveEvent {
	t.Helper()
	var out []store.ProactiveEvent
	for _, u := range users {
		key := "test:id:" + u + fmt.Sprint(time.Now().UnixNano())
		applied, err := db.ApplyWebhook(context.Background(),
			store.WebhookRecord{DedupeKey: key, WebhookID: "wh_0123456789abcdef0123456789abcdef", Source: "nexthink",
				ReceivedAt: time.Now(), Outcome: store.WebhookOpened, Monitor: "Outlook crashes", AlertStatus: "open"},
			store.ProactiveEffects{Callback: true, Open: []store.NewProactiveEvent{{
				ID: fmt.Sprintf("pe_%032x", time.Now().UnixNano()), Topic: "outlook", SubjectKey: "user:" + u, UserName: u,
				DeviceName: "PC-" + u, Alert: []byte(`{"status":"open"}`), Remediations: []byte(`[]`), Message: "Hi " + u,
				SuppressionWindow: time.Hour,
			}}},
			wire.ProactiveDelivery)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, applied.Opened...)
	}
	return out
}
