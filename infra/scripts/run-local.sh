#!/usr/bin/env bash
# `make run`: the whole product on this machine. nxsim (the Nexthink tenant emulator,
# with a seeded fleet) on 127.0.0.1:8091, dexbridge with its embedded NATS and the
# local PostgreSQL on 127.0.0.1:8090, a first discovery, a demo API key, and a curl
# session to paste. Ctrl-C stops both.
#
# DEXBRIDGE_CONFIG, DATABASE_URL and NXSIM_SIZE override the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."

config="${DEXBRIDGE_CONFIG:-config/demo.yaml}"
if [ -z "${DATABASE_URL:-}" ]; then
  infra/scripts/local-postgres.sh dexbridge
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/dexbridge?sslmode=disable"
fi
for port in 8090 8091 4223; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken: is dexbridge or nxsim already running?" >&2
    exit 1
  fi
done

mkdir -p bin .data
echo "building bin/dexbridge and bin/nxsim" >&2
go build -o bin/ ./cmd/dexbridge ./cmd/nxsim

# nxsim's demo credentials, as an administrator would configure them for dexbridge.
export NEXTHINK_EU_CLIENT_ID=eu-client NEXTHINK_EU_CLIENT_SECRET=eu-client-secret
export NEXTHINK_US_CLIENT_ID=us-client NEXTHINK_US_CLIENT_SECRET=us-client-secret
export WEBHOOK_NEXTHINK_PASSWORD="${WEBHOOK_NEXTHINK_PASSWORD:-demo-webhook-password}"
export DEXBRIDGE_CONFIG="$config"

started=$(date -u +%Y-%m-%dT%H:%M:%S)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/nxsim -addr 127.0.0.1:8091 -size "${NXSIM_SIZE:-2000}" -exec-pending 2s -exec-running 4s >.data/nxsim.log 2>&1 &
pids+=($!)
bin/dexbridge run >.data/dexbridge.log 2>&1 &
pids+=($!)

wait_for() { # url what
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[@]}" 2>/dev/null; then
      echo "$2 stopped; see .data/nxsim.log and .data/dexbridge.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "$2 is not ready after 60 s; see .data/" >&2
  exit 1
}
wait_for http://127.0.0.1:8091/_nxsim/healthz nxsim
wait_for http://127.0.0.1:8090/readyz dexbridge

KEY=$(bin/dexbridge apikey create -name "demo $(date +%H:%M:%S)" -scopes read,diagnose,remediate,admin -q)

# nxsim's fleet was just generated: discover it now, even when the cache of an
# earlier run is younger than cache.refresh (409: a discovery is already running),
# and wait until both tenants have been read since this start.
echo "discovering the tenants' devices into the cache" >&2
curl -fsS -o /dev/null -X POST -H "X-API-Key: $KEY" http://127.0.0.1:8090/api/v1/admin/discovery 2>/dev/null || true
for _ in $(seq 1 240); do
  status=$(curl -fsS -H "X-API-Key: $KEY" http://127.0.0.1:8090/api/v1/status 2>/dev/null || true)
  up=0
  for t in $(grep -o '"last_success_at":"[^"]*"' <<<"$status" | cut -d'"' -f4 || true); do
    [[ "$t" > "$started" ]] && up=$((up + 1))
  done
  [ "$up" -ge 2 ] && break
  if grep -q '"state":"down"' <<<"$status"; then
    echo "discovery failed; see .data/dexbridge.log" >&2
    exit 1
  fi
  sleep 0.5
done
[ "${up:-0}" -ge 2 ] || { echo "discovery did not finish in 2 minutes; see .data/dexbridge.log" >&2; exit 1; }

cat <<MSG

dexbridge is running.
  REST API     http://127.0.0.1:8090/api/v1   (OpenAPI: http://127.0.0.1:8090/openapi.json)
  metrics      http://127.0.0.1:8090/metrics
  nxsim        http://127.0.0.1:8091          (tenants eu and us; control API under /_nxsim/)
  logs         .data/dexbridge.log, .data/nxsim.log

A demo API key (read, diagnose, remediate, admin), and a session to paste in another
terminal: John Doe (jdoe) says "Outlook keeps crashing".

export KEY=$KEY
alias call='curl -s -H "X-API-Key: \$KEY" -H "Content-Type: application/json"'

# 1. Identify: which devices does jdoe use?
call 'http://127.0.0.1:8090/api/v1/devices?username=jdoe'

# 2. Diagnose Outlook on his most recent device.
call -X POST -d '{"device":"PC-OUTLOOK-OFFLINE"}' http://127.0.0.1:8090/api/v1/topics/outlook/diagnosis

# 3. Remediate: run the fix the diagnosis suggested, waiting up to 60 s for it.
call -X POST -d '{"device":"PC-OUTLOOK-OFFLINE","wait_seconds":60,"reason":"jdoe: Outlook keeps crashing"}' \\
  http://127.0.0.1:8090/api/v1/topics/outlook/remediations/set_outlook_online

# 4. Confirm with fresh data from the device: no finding left.
call -X POST -d '{"device":"PC-OUTLOOK-OFFLINE","refresh":true}' http://127.0.0.1:8090/api/v1/topics/outlook/diagnosis

The same from the command line, with Bruce Banner's printer: export DEXBRIDGE_API_KEY=\$KEY, then
  bin/dexbridge devices -user bbanner
  bin/dexbridge diagnose printing -device PC-PRINTER
  bin/dexbridge remediate printing restart_print_spooler -device PC-PRINTER
  bin/dexbridge remediate printing clear_print_queue -device PC-PRINTER
  bin/dexbridge diagnose printing -device PC-PRINTER -refresh
and the example chatbot, which asks before it fixes anything:
  go run ./examples/chatbot -key \$KEY -user hjordan -say "Outlook keeps crashing"

Ctrl-C stops dexbridge and nxsim.
MSG
wait -n "${pids[@]}"
echo "a process stopped; see .data/dexbridge.log and .data/nxsim.log" >&2
