#!/usr/bin/env bash
# `make run`: dexbridge on one machine, with its embedded NATS and the local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ]; then
  infra/scripts/local-postgres.sh dexbridge
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/dexbridge?sslmode=disable"
fi
mkdir -p bin
go build -o bin/dexbridge ./cmd/dexbridge
exec bin/dexbridge run "$@"
