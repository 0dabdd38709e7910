#!/usr/bin/env bash
# The local router's cost, on this machine, over loopback only.
#
# Starts `tugboat up` on a copy of manifests/local.yaml (its own ports and state
# directory), times the first successful POST /api/predict from the moment `up` was
# started, then runs wrk at equal load (same connections, threads, duration, body)
#   (d) straight to the inference replica: POST http://127.0.0.1:<its port>/ml/predict
#   (r) through the router:               POST http://127.0.0.1:<listen>/ml/predict
# twice each, interleaved (d r d r), and prints throughput r/d (target >= 0.85) and the
# p99 the router adds. Figures, not a test: nothing here fails on a number.
#
# Usage: bench/router.sh                     (builds with the `local` profile first)
#        TARGET=/path/to/target/local NO_BUILD=1 bench/router.sh
# Knobs: DURATION=10 CONNECTIONS=32 THREADS=1 LISTEN_PORT=18280 HTTP_PORT=18290
# Everything started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${TARGET:-$ROOT/target/local}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
LISTEN_PORT=${LISTEN_PORT:-18280}
HTTP_PORT=${HTTP_PORT:-18290}
BODY="$ROOT/bench/predict.json"
LUA="$ROOT/bench/wrk.lua"
WORK=$(mktemp -d)

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk (Debian package)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

if [ -z "${NO_BUILD:-}" ]; then
  echo "== building with the local profile" >&2
  (cd "$ROOT" && cargo build --profile local -q -p tugboat --bin tugboat \
    -p tugboat-backend --bin backend -p tugboat-inference --bin inference)
fi

UP_PID=""
cleanup() {
  if [ -n "$UP_PID" ]; then
    kill "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The repository's document, on this run's ports, with absolute paths and quiet workloads.
sed -e "s#listen: 127.0.0.1:8080#listen: 127.0.0.1:$LISTEN_PORT#" \
    -e "s#http://127.0.0.1:8080/ml#http://127.0.0.1:$LISTEN_PORT/ml#" \
    -e "s#stateDir: .tugboat#stateDir: $WORK/state#" \
    -e "s#file://.tugboat/status.json#file://$WORK/state/status.json#" \
    -e "s#file://../workloads/inference/models#file://$ROOT/workloads/inference/models#" \
    -e "s#LOG_LEVEL: info#LOG_LEVEL: warn#" \
    "$ROOT/manifests/local.yaml" >"$WORK/local.yaml"

echo "== tugboat up" >&2
START=$(date +%s%N)
"$TARGET/tugboat" up --no-ui -f "$WORK/local.yaml" --bin-dir "$TARGET" \
  --http-addr "127.0.0.1:$HTTP_PORT" --log warn 2>"$WORK/up.log" &
UP_PID=$!
for _ in $(seq 1 600); do
  if curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$LISTEN_PORT/api/predict" \
       -H 'content-type: application/json' -d @"$BODY" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$UP_PID" 2>/dev/null; then
    echo "tugboat up exited; its log:" >&2; cat "$WORK/up.log" >&2; exit 1
  fi
  sleep 0.1
done
FIRST_MS=$(( ($(date +%s%N) - START) / 1000000 ))
echo "time from \`tugboat up\` to the first /api/predict answer: ${FIRST_MS} ms"

INFERENCE_PID=$(pgrep -P "$UP_PID" -x inference | head -1)
DIRECT_PORT=$(ss -ltnpH | grep "pid=$INFERENCE_PID," | sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/' | head -1)
if [ -z "$DIRECT_PORT" ]; then
  echo "could not find the inference replica's port" >&2; exit 1
fi
echo "inference replica pid $INFERENCE_PID on port $DIRECT_PORT; router on $LISTEN_PORT" >&2

run() { # name url -> "RESULT rps p50 p99 non2xx errors requests"
  BODY_FILE="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$LUA" "$2" >/dev/null 2>&1 || true
  BODY_FILE="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" "$2" \
    | grep '^RESULT' | sed "s/^RESULT/$1/"
}

DIRECT_URL="http://127.0.0.1:$DIRECT_PORT/ml/predict"
ROUTER_URL="http://127.0.0.1:$LISTEN_PORT/ml/predict"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, POST bench/predict.json (uptime: $(uptime | sed 's/.*load/load/'))"
printf '%-8s %10s %9s %9s %7s %7s\n' run req/s p50_us p99_us non2xx errors
RESULTS=()
for name in direct router direct router; do
  if [ "$name" = direct ]; then url=$DIRECT_URL; else url=$ROUTER_URL; fi
  line=$(run "$name" "$url")
  RESULTS+=("$line")
  echo "$line" | awk '{printf "%-8s %10s %9s %9s %7s %7s\n", $1, $2, $3, $4, $5, $6}'
done
printf '%s\n' "${RESULTS[@]}" | awk '
  $1 == "direct" { d += $2; dp99 += $4; nd++ }
  $1 == "router" { r += $2; rp99 += $4; nr++ }
  END {
    printf "throughput router/direct: %.2f (target >= 0.85)\n", (r / nr) / (d / nd)
    printf "p99 added by the router: %.0f us (direct %.0f us, router %.0f us)\n", rp99 / nr - dp99 / nd, dp99 / nd, rp99 / nr
  }'
