package remoteactions

import (
	"strings"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/cursor"
	"github.com/dexbridge/dexbridge/internal/store"
)

var testCodec = cursor.New([]byte("0123456789abcdef0123456789abcdef"), cursorKeyPurpose)

func testScope(device string) []byte {
	since := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	return cursorScope(events.ExecutionsListRequest{Device: device, Statuses: []string{"pending", "failure"}, Since: &since})
}

// TestCursorRoundTripAndRefusals: a cursor gives back its position for its query
// only; altered, truncated, re-signed with another key or for other filters, it is
// refused.
func TestCursorRoundTripAndRefusals(t *testing.T) {
	pos := store.ExecutionPosition{CreatedAt: time.Date(2026, 5, 4, 9, 12, 31, 402123000, time.UTC), ID: "ex_0b9f6f3c2d8e4a71a5c3e1d2f4b6a890"}
	scope := testScope("PC-STARTUP")
	c, err := encodeCursor(testCodec, scope, pos)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := decodeCursor(testCodec, scope, c)
	if !ok || !got.CreatedAt.Equal(pos.CreatedAt) || got.ID != pos.ID {
		t.Fatalf("round trip: got %+v %v, want %+v", got, ok, pos)
	}
	// The filters in another order, or the device in another case, are the same query.
	since := time.Date(2026, 5, 4, 11, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	same := cursorScope(events.ExecutionsListRequest{Device: "pc-startup", Statuses: []string{"failure", "pending", "failure"}, Since: &since})
	if _, ok := decodeCursor(testCodec, same, c); !ok {
		t.Error("the same filters written differently: refused")
	}
	flipped := []byte(c)
	flipped[20] ^= 1
	for name, bad := range map[string]string{
		"altered":   string(flipped),
		"truncated": c[:len(c)-1],
		"extended":  c + "A",
		"other key": func() string {
			s, _ := encodeCursor(cursor.New([]byte("another key, another deployment!"), cursorKeyPurpose), scope, pos)
			return s
		}(),
		"other device": func() string { s, _ := encodeCursor(testCodec, testScope("PC-GPO"), pos); return s }(),
		"other filters": func() string {
			s, _ := encodeCursor(testCodec, cursorScope(events.ExecutionsListRequest{}), pos)
			return s
		}(),
		"empty":      "",
		"not base64": strings.Repeat("!", len(c)),
	} {
		if _, ok := decodeCursor(testCodec, scope, bad); ok {
			t.Errorf("%s cursor %q: accepted", name, bad)
		}
	}
	if _, err := encodeCursor(testCodec, scope, store.ExecutionPosition{ID: "ex_1"}); err == nil {
		t.Error("an id that is not ex_ and 32 hex digits made a cursor")
	}
}

// FuzzCursorDecode: whatever the string, decode never panics, and what it accepts is
// exactly the cursor encode makes of the position it returns.
func FuzzCursorDecode(f *testing.F) {
	scope := testScope("PC-STARTUP")
	valid, _ := encodeCursor(testCodec, scope, store.ExecutionPosition{CreatedAt: time.Unix(1778000000, 123000), ID: "ex_0b9f6f3c2d8e4a71a5c3e1d2f4b6a890"})
	for _, c := range []string{valid, valid[:len(valid)-2] + "AA", "", "AQ", strings.Repeat("A", len(valid)), strings.Repeat("_", 200), valid + "\n"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos, ok := decodeCursor(testCodec, scope, s)
		if !ok {
			return
		}
		again, err := encodeCursor(testCodec, scope, pos)
		if err != nil || again != s {
			t.Fatalf("decode(%q) = %+v, which encodes to %q (%v)", s, pos, again, err)
		}
	})
}
