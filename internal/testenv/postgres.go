package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/dexbridge/dexbridge/internal/store"
)

// container is the one PostgreSQL container a test binary starts when it has no
// DATABASE_URL; testcontainers' reaper removes it when the binary exits. This is the
// package's only shared state, and it is written once.
var container struct {
	once sync.Once
	url  string
	err  error
}

func serverURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	container.once.Do(func() { container.url, container.err = startContainer() })
	if container.err != nil {
		unavailable(t, "postgres: DATABASE_URL is unset and %v", container.err)
	}
	return container.url
}

func startContainer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("no Docker engine for testcontainers: %w", err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 3*time.Second)
	defer hcancel()
	if err := p.Health(hctx); err != nil {
		return "", fmt.Errorf("no Docker engine for testcontainers: %w", err)
	}
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine", tcpostgres.WithDatabase("test"),
		tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"), tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", fmt.Errorf("postgres container: %w", err)
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

// PostgresURL returns a connection URL whose search_path is a fresh schema private to
// t, dropped when t ends. Nothing is migrated.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := serverURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable(t, "postgres: %v", err)
	}
	defer conn.Close(ctx)
	schema := "t_" + sanitize(t.Name()) + "_" + randomHex(4)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("DATABASE_URL is not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres returns a pool on a fresh, migrated schema private to t.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Migrated(t, PostgresURL(t))
}

// Migrated opens a pool on url (a schema PostgresURL gave, or one a process under
// test uses) and migrates it. The pool closes when t ends; a caller may close it
// sooner, as Close may be called again.
func Migrated(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}
