package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestAPIKeyCreateDelegate: apikey create -scopes delegate,... -employee binds the key
// to the employee; an employee without the scope, or a delegate with admin, is a
// usage error and creates nothing.
func TestAPIKeyCreateDelegate(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	ctx := context.Background()
	pool := testenv.Migrated(t, dbURL)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		env := Env{Getenv: func(k string) string {
			if k == "DATABASE_URL" {
				return dbURL
			}
			return ""
		}, Stdout: &out, Stderr: &errOut}
		err := Run(ctx, append([]string{"apikey", "create", "-config", writeEmptyConfig(t)}, args...), env)
		return out.String(), err
	}
	out, err := run("-name", "agent", "-scopes", "delegate,read,diagnose", "-employee", "jdoe@example.com")
	if err != nil || !strings.Contains(out, "for:    jdoe@example.com") || !strings.Contains(out, "scopes: delegate,read,diagnose") {
		t.Fatalf("create delegate: got %q %v", out, err)
	}
	keys, err := store.New(pool).ListAPIKeys(ctx)
	if err != nil || len(keys) == 0 || keys[0].EmployeeUPN == nil || *keys[0].EmployeeUPN != "jdoe@example.com" {
		t.Fatalf("stored: got %+v %v, want the key bound to jdoe@example.com", keys, err)
	}
	for _, args := range [][]string{
		{"-name", "x", "-scopes", "read", "-employee", "jdoe@example.com"},
		{"-name", "x", "-scopes", "delegate,admin", "-employee", "jdoe@example.com"},
	} {
		if _, err := run(args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
