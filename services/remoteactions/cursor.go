package remoteactions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/store"
)

// A cursor of the execution list is where the previous page ended, the (created_at,
// id) of its last execution, signed with HMAC-SHA256 under the deployment's key and
// over the query's filters. Any replica checks it; a cursor that was altered, forged
// without the key, or issued for other filters is refused.
//
// Layout, before base64url (no padding):
//
//	version (1) | created_at in Unix microseconds (8, big endian) | id's 16 bytes | MAC (16)
const (
	cursorVersion = 1
	cursorIDLen   = 16
	cursorMACLen  = 16
	cursorRawLen  = 1 + 8 + cursorIDLen + cursorMACLen
)

// cursorEncoding refuses non-canonical encodings, so that one position has one cursor.
var cursorEncoding = base64.RawURLEncoding.Strict()

// cursorKeyPurpose names the deployment's signing key of these cursors.
const cursorKeyPurpose = "executions.cursor"

// cursorScope is what a cursor is bound to: the filters of its query (not its page
// size), in a canonical form.
func cursorScope(req events.ExecutionsListRequest) []byte {
	statuses := slices.Clone(req.Statuses)
	slices.Sort(statuses)
	statuses = slices.Compact(statuses)
	since := ""
	if req.Since != nil {
		since = req.Since.UTC().Format(time.RFC3339Nano)
	}
	raw, _ := json.Marshal([]any{strings.ToLower(req.Device), statuses, since, req.RemoteAction}) // strings only
	sum := sha256.Sum256(raw)
	return sum[:]
}

// cursorCodec makes and checks cursors with one key.
type cursorCodec struct {
	key []byte
}

func (c cursorCodec) mac(scope, body []byte) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte("dexbridge executions cursor\x00"))
	h.Write(scope)
	h.Write(body)
	return h.Sum(nil)[:cursorMACLen]
}

// encode is the cursor of the page after p, for the query of scope.
func (c cursorCodec) encode(scope []byte, p store.ExecutionPosition) (string, error) {
	id, ok := strings.CutPrefix(p.ID, "ex_")
	raw, err := hex.DecodeString(id)
	if !ok || err != nil || len(raw) != cursorIDLen {
		return "", fmt.Errorf("execution id %q cannot be a cursor", p.ID)
	}
	body := make([]byte, 0, cursorRawLen)
	body = append(body, cursorVersion)
	body = binary.BigEndian.AppendUint64(body, uint64(p.CreatedAt.UnixMicro()))
	body = append(body, raw...)
	return cursorEncoding.EncodeToString(append(body, c.mac(scope, body)...)), nil
}

// decode returns the position s holds, when c made s for the query of scope.
func (c cursorCodec) decode(scope []byte, s string) (store.ExecutionPosition, bool) {
	if len(s) != cursorEncoding.EncodedLen(cursorRawLen) {
		return store.ExecutionPosition{}, false
	}
	raw, err := cursorEncoding.DecodeString(s)
	if err != nil || len(raw) != cursorRawLen || raw[0] != cursorVersion {
		return store.ExecutionPosition{}, false
	}
	body, sum := raw[:cursorRawLen-cursorMACLen], raw[cursorRawLen-cursorMACLen:]
	if !hmac.Equal(sum, c.mac(scope, body)) {
		return store.ExecutionPosition{}, false
	}
	micros := int64(binary.BigEndian.Uint64(body[1:9]))
	return store.ExecutionPosition{CreatedAt: time.UnixMicro(micros).UTC(), ID: "ex_" + hex.EncodeToString(body[9:])}, true
}

// cursorKeys loads the deployment's cursor key once (store.SigningKey) and keeps it.
type cursorKeys struct {
	mu  sync.Mutex
	key []byte
}

func (k *cursorKeys) codec(ctx context.Context, s Store) (cursorCodec, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		key, err := s.SigningKey(ctx, cursorKeyPurpose)
		if err != nil {
			return cursorCodec{}, err
		}
		k.key = key
	}
	return cursorCodec{key: k.key}, nil
}
