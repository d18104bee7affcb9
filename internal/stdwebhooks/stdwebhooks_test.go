package stdwebhooks

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestTheReferenceLibraryVerifies: the specification's own Go library accepts what
// Sign produces, and refuses it once the body changes.
func TestTheReferenceLibraryVerifies(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := Key(secret)
	if err != nil || len(key) != keySize {
		t.Fatalf("key: %d bytes, %v", len(key), err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"kind":"opened"}`)
	h := http.Header{}
	Sign(h, key, "pd_42", time.Now(), body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := wh.Verify([]byte(`{"kind":"closed"}`), h); err == nil {
		t.Fatal("a changed body verified")
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!", "sk_abc", strings.TrimPrefix(secret, SecretPrefix)} {
		if _, err := Key(bad); err == nil {
			t.Errorf("Key(%q): got a key", bad)
		}
	}
}
