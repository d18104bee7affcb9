#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL answers on 127.0.0.1:5432, starting the local
# cluster if it is down, and creates the database named in $1 if it is missing.
# Used by `make run`, `make test` and .ci/run; a no-op where PostgreSQL already runs.
set -euo pipefail
db="${1:-}"
host=127.0.0.1 port=5432

if ! pg_isready -h "$host" -p "$port" -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting the local PostgreSQL cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  else
    echo "PostgreSQL is not answering on $host:$port and no local cluster was found; set DATABASE_URL" >&2
    exit 1
  fi
  for _ in $(seq 1 60); do
    pg_isready -h "$host" -p "$port" -q && break
    sleep 0.5
  done
  pg_isready -h "$host" -p "$port" -q || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

if [ -n "$db" ]; then
  exists=$(psql -h "$host" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
  [ "$exists" = 1 ] || psql -h "$host" -p "$port" -U postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
fi
