#!/usr/bin/env bash
# HTTP benchmark of the workloads, on this machine, over loopback only.
#
# Measures throughput and p50/p99 latency of
#   (c) a bare axum endpoint that does nothing (the HTTP ceiling: the `ceiling`
#       example of tugboat-service-kit, same runtime and serve loop as the services),
#   (a) POST /predict on the inference service (model v1, tract),
#   (b) POST /api/predict on the backend, forwarding to (a),
# then (a) again at about half its maximum throughput, for the p99 target.
# Prints the ratios a/c and b/a. Targets (reported, not asserted): a/c >= 0.7,
# b/a >= 0.85, /predict p99 <= 2 ms at half of max throughput.
#
# Usage: bench/http.sh            (from anywhere; needs cargo, curl, root or sudo
#                                  for apt-get if wrk is missing)
# Knobs (environment): DURATION=10 (seconds per run), CONNECTIONS=32, THREADS=1
#   (wrk threads: on 2 cores every thread the load generator takes is one the
#   server under test does not get), BASE_PORT=18180.
#
# Every run is bounded by DURATION; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18180}
PORT_C=$BASE_PORT
PORT_A=$((BASE_PORT + 1))
PORT_B=$((BASE_PORT + 2))
HOST=127.0.0.1
BODY="$ROOT/bench/predict.json"
LUA="$ROOT/bench/wrk.lua"
TARGET="$ROOT/target/release"
LOGS=$(mktemp -d)

# --- load generator -------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk (Debian package)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# --- build ------------------------------------------------------------------------
echo "== building release binaries (shared target dir)" >&2
(cd "$ROOT" && cargo build --release -q \
  -p tugboat-inference -p tugboat-backend -p tugboat-service-kit --bins --example ceiling)

# --- processes ------------------------------------------------------------------------
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$LOGS"
}
trap cleanup EXIT

wait_for() { # url, name: up to 10 s for a 200
  local url=$1 name=$2
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not become ready at $url; its log:" >&2
  cat "$LOGS/$name.log" >&2 || true
  exit 1
}

"$TARGET/examples/ceiling" "$PORT_C" >"$LOGS/ceiling.log" 2>&1 &
PIDS+=($!)
(cd "$ROOT/workloads/inference" &&
  exec env HOST=$HOST PORT=$PORT_A LOG_LEVEL=warn MODEL_URI=models/v1 \
    "$TARGET/inference") >"$LOGS/inference.log" 2>&1 &
PIDS+=($!)
env HOST=$HOST PORT=$PORT_B LOG_LEVEL=warn ML_SERVICE_URL="http://$HOST:$PORT_A" \
  "$TARGET/backend" >"$LOGS/backend.log" 2>&1 &
PIDS+=($!)

wait_for "http://$HOST:$PORT_C/health" ceiling
wait_for "http://$HOST:$PORT_A/ready" inference
wait_for "http://$HOST:$PORT_B/health" backend

# Sanity: every endpoint answers 200 to the benchmark body before it is measured.
for url in "http://$HOST:$PORT_C/predict" "http://$HOST:$PORT_A/predict" \
  "http://$HOST:$PORT_B/api/predict"; do
  curl -fsS -o /dev/null -H 'content-type: application/json' --data-binary "@$BODY" "$url"
done

# --- measure ------------------------------------------------------------------------
run() { # name, url, connections, delay_ms -> "rps p50_us p99_us non2xx errors requests"
  local name=$1 url=$2 conns=$3 delay=${4:-0}
  # A short warm-up so connection setup and first-touch allocations are not measured.
  BODY_FILE="$BODY" DELAY_MS=0 wrk -t"$THREADS" -c"$conns" -d2s -s "$LUA" "$url" >/dev/null
  local out
  out=$(BODY_FILE="$BODY" DELAY_MS="$delay" \
    wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --timeout 5s -s "$LUA" "$url")
  echo "$out" >"$LOGS/wrk-$name.txt"
  local result
  result=$(grep '^RESULT' <<<"$out" | cut -d' ' -f2-)
  read -r _ _ _ non2xx errors _ <<<"$result"
  if [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then
    echo "warning: $name had $non2xx non-2xx answers and $errors socket errors" >&2
  fi
  echo "$result"
}

ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== $DURATION s per run, $CONNECTIONS connections, $THREADS wrk thread(s), $(nproc) cores" >&2
read -r C_RPS C_P50 C_P99 _ <<<"$(run ceiling "http://$HOST:$PORT_C/predict" "$CONNECTIONS")"
read -r A_RPS A_P50 A_P99 _ <<<"$(run inference "http://$HOST:$PORT_A/predict" "$CONNECTIONS")"
read -r B_RPS B_P50 B_P99 _ <<<"$(run backend "http://$HOST:$PORT_B/api/predict" "$CONNECTIONS")"

# Half load: the fewest connections (closed loop, no think time) whose throughput
# reaches half of (a)'s maximum, found with short probes; then a full run there.
# (Pacing with wrk's per-connection delay() fires connections in millisecond-aligned
# bursts, which measures wrk's bursts more than the server.)
TARGET_RPS=$(awk -v r="$A_RPS" 'BEGIN { printf "%d", r / 2 }')
HALF_CONNS=$CONNECTIONS
for conns in 1 2 3 4 6 8 12 16 24; do
  probe=$(BODY_FILE="$BODY" DELAY_MS=0 \
    wrk -t"$THREADS" -c"$conns" -d2s -s "$LUA" "http://$HOST:$PORT_A/predict" |
    grep '^RESULT' | cut -d' ' -f2)
  if awk -v p="$probe" -v t="$TARGET_RPS" 'BEGIN { exit !(p >= t) }'; then
    HALF_CONNS=$conns
    break
  fi
done
read -r H_RPS H_P50 H_P99 _ <<<"$(run inference-half "http://$HOST:$PORT_A/predict" "$HALF_CONNS")"

printf '\n%-34s %12s %10s %10s\n' "endpoint" "requests/s" "p50 ms" "p99 ms"
printf '%-34s %12s %10s %10s\n' "(c) ceiling: bare axum" "$C_RPS" "$(ms "$C_P50")" "$(ms "$C_P99")"
printf '%-34s %12s %10s %10s\n' "(a) inference POST /predict" "$A_RPS" "$(ms "$A_P50")" "$(ms "$A_P99")"
printf '%-34s %12s %10s %10s\n' "(b) backend POST /api/predict" "$B_RPS" "$(ms "$B_P50")" "$(ms "$B_P99")"
printf '%-34s %12s %10s %10s\n' "(a) at ~half max ($HALF_CONNS conns)" "$H_RPS" "$(ms "$H_P50")" "$(ms "$H_P99")"
echo
echo "a/c = $(ratio "$A_RPS" "$C_RPS")   (target >= 0.70)"
echo "b/a = $(ratio "$B_RPS" "$A_RPS")   (target >= 0.85)"
echo "/predict p99 at $H_RPS req/s (target rate $TARGET_RPS, half of $A_RPS) = $(ms "$H_P99") ms   (target <= 2 ms)"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews all figures)"
