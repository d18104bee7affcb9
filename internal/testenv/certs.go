package testenv

import (
	"testing"

	"github.com/dexbridge/dexbridge/internal/tlsfiles"
)

// Certs writes a fresh CA and the server and client certificates it signs into a
// temporary directory.
func Certs(t testing.TB) tlsfiles.Files {
	t.Helper()
	f, err := tlsfiles.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f
}
