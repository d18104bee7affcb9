package remoteactions

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dexbridge/dexbridge/events"
	"github.com/dexbridge/dexbridge/internal/cursor"
	"github.com/dexbridge/dexbridge/internal/store"
)

// A cursor of the execution list is where the previous page ended, the (created_at,
// id) of its last execution, sealed by internal/cursor under the deployment's key and
// bound to the query's filters. Any replica opens it; a cursor that was altered,
// forged without the key, or issued for other filters is refused.
//
// The position: created_at in Unix microseconds (8 bytes, big endian) | the id's 16 bytes.
const (
	cursorIDLen  = 16
	cursorPosLen = 8 + cursorIDLen
)

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
	// Statuses are names without commas (events.ExecutionStatuses).
	return cursor.Scope(strings.ToLower(req.Device), strings.Join(statuses, ","), since, req.RemoteAction)
}

// encodeCursor is the cursor of the page after p, for the query of scope.
func encodeCursor(c cursor.Codec, scope []byte, p store.ExecutionPosition) (string, error) {
	id, ok := strings.CutPrefix(p.ID, "ex_")
	raw, err := hex.DecodeString(id)
	if !ok || err != nil || len(raw) != cursorIDLen {
		return "", fmt.Errorf("execution id %q cannot be a cursor", p.ID)
	}
	pos := binary.BigEndian.AppendUint64(make([]byte, 0, cursorPosLen), uint64(p.CreatedAt.UnixMicro()))
	return c.Seal(scope, append(pos, raw...)), nil
}

// decodeCursor returns the position s holds, when c sealed s for the query of scope.
func decodeCursor(c cursor.Codec, scope []byte, s string) (store.ExecutionPosition, bool) {
	pos, ok := c.Open(scope, s)
	if !ok || len(pos) != cursorPosLen {
		return store.ExecutionPosition{}, false
	}
	micros := int64(binary.BigEndian.Uint64(pos[:8]))
	return store.ExecutionPosition{CreatedAt: time.UnixMicro(micros).UTC(), ID: "ex_" + hex.EncodeToString(pos[8:])}, true
}
