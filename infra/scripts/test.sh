#!/usr/bin/env bash
# The test command: real PostgreSQL and NATS, the race detector on.
# Without DATABASE_URL it uses (and if needed starts) the machine's PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1; then
  if infra/scripts/local-postgres.sh test; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
  fi
fi
echo "go vet ./..." >&2
go vet ./...
echo "go test -race ./... (DATABASE_URL ${DATABASE_URL:+is set}, REQUIRE_SERVICES=${REQUIRE_SERVICES:-0})" >&2
go test -race -count=1 -timeout 20m ./...
