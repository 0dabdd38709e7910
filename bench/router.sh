#!/usr/bin/env bash
# The local router's cost, on this machine, over loopback only.
#
# Starts `tugboat up` on a copy of manifests/local.yaml (its own ports and state
# directory), times the first successful POST /api/predict from the moment `up` was
# started, then runs wrk at equal load (same connections, threads, duration, body)
#   (d) straight to the inference replica: POST http://127.0.0.1:<its port>/ml/predict
#   (r) through the router:               POST http://127.0.0.1:<listen>/ml/predict
#   (n) through nginx, when it is installed (Debian's `nginx-light`; REFERENCE=none to
#       skip): the same proxying (HTTP/1.1 keep-alive upstream, no access log, one
#       worker per core) as a reference for what any reverse proxy costs here
# interleaved (d r n d r n), and prints throughput r/d (target >= 0.85), n/d, the p99
# each proxy adds, and CPU time per request of the router (the `tugboat up` process),
# of nginx and of the inference service (utime + stime from /proc over the run,
# divided by the requests wrk completed). Figures, not a test: nothing here fails on
# a number.
#
# Usage: bench/router.sh                     (builds with the `fast` profile first: the
#                                            local platform fully optimised, no LTO)
#        TARGET=/path/to/target/fast NO_BUILD=1 bench/router.sh
# Knobs: DURATION=10 CONNECTIONS=32 THREADS=1 LISTEN_PORT=18280 HTTP_PORT=18290
# Everything started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${TARGET:-$ROOT/target/fast}
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
  echo "== building with the fast profile" >&2
  (cd "$ROOT" && cargo build --profile fast --no-default-features -q -p tugboat --bin tugboat \
    -p tugboat-backend --bin backend -p tugboat-inference --bin inference)
fi

UP_PID=""
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
  fi
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

NGINX_PORT=$((LISTEN_PORT + 1))
REFERENCE=${REFERENCE:-nginx}
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
if [ "$REFERENCE" = nginx ] && [ -n "$NGINX" ]; then
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $(nproc);
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  upstream inference { server 127.0.0.1:$DIRECT_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://inference;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
CONF
  "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/start.log" &
  NGINX_PID=$!
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$NGINX_PORT/ml/predict" \
      -H 'content-type: application/json' -d @"$BODY" 2>/dev/null && break
    sleep 0.1
  done
  echo "nginx $($NGINX -v 2>&1 | sed 's/.*\///') on $NGINX_PORT (reference proxy)" >&2
else
  REFERENCE=none
fi

# CPU ticks (utime + stime) of a process and its threads; for nginx, its master and
# workers together.
ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" 2>/dev/null || true); }
CLK_TCK=$(getconf CLK_TCK)

run() { # name url proxy-pids... -> "name rps p50 p99 non2xx errors requests proxy_us inference_us"
  local name=$1 url=$2; shift 2
  BODY_FILE="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$LUA" "$url" >/dev/null 2>&1 || true
  local p0 i0 p1 i1 line
  p0=$(ticks "$@"); i0=$(ticks "$INFERENCE_PID")
  line=$(BODY_FILE="$BODY" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" "$url" \
    | grep '^RESULT' | sed "s/^RESULT/$name/")
  p1=$(ticks "$@"); i1=$(ticks "$INFERENCE_PID")
  echo "$line" | awk -v pt=$((p1 - p0)) -v it=$((i1 - i0)) -v hz="$CLK_TCK" -v proxied=$# '{
    n = $7 > 0 ? $7 : 1
    proxy = proxied > 0 ? sprintf("%.1f", pt / hz * 1e6 / n) : "-"
    printf "%s %s %.1f\n", $0, proxy, it / hz * 1e6 / n }'
}

DIRECT_URL="http://127.0.0.1:$DIRECT_PORT/ml/predict"
ROUTER_URL="http://127.0.0.1:$LISTEN_PORT/ml/predict"
NGINX_URL="http://127.0.0.1:$NGINX_PORT/ml/predict"
ORDER="direct router"
if [ "$REFERENCE" = nginx ]; then ORDER="direct router nginx"; fi
echo "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, POST bench/predict.json (uptime: $(uptime | sed 's/.*load/load/'))"
printf '%-8s %10s %9s %9s %7s %7s %13s %13s\n' run req/s p50_us p99_us non2xx errors proxy_us/req inference_us/req
RESULTS=()
for name in $ORDER $ORDER; do
  case $name in
    direct) line=$(run direct "$DIRECT_URL") ;;
    router) line=$(run router "$ROUTER_URL" "$UP_PID") ;;
    nginx) line=$(run nginx "$NGINX_URL" $(nginx_pids)) ;;
  esac
  RESULTS+=("$line")
  echo "$line" | awk '{printf "%-8s %10s %9s %9s %7s %7s %13s %13s\n", $1, $2, $3, $4, $5, $6, $8, $9}'
done
printf '%s\n' "${RESULTS[@]}" | awk '
  { rps[$1] += $2; p99[$1] += $4; cpu[$1] += $8; inf[$1] += $9; n[$1]++ }
  END {
    d = rps["direct"] / n["direct"]; dp = p99["direct"] / n["direct"]
    printf "throughput router/direct: %.2f (target >= 0.85)\n", rps["router"] / n["router"] / d
    printf "p99 added by the router: %.0f us (direct %.0f us, router %.0f us)\n", p99["router"] / n["router"] - dp, dp, p99["router"] / n["router"]
    printf "CPU per request: router %.1f us, inference %.1f us (direct: inference %.1f us)\n", cpu["router"] / n["router"], inf["router"] / n["router"], inf["direct"] / n["direct"]
    if (n["nginx"] > 0) {
      printf "reference: nginx/direct %.2f, router/nginx %.2f, p99 added by nginx %.0f us, nginx CPU per request %.1f us\n", rps["nginx"] / n["nginx"] / d, rps["router"] / n["router"] / (rps["nginx"] / n["nginx"]), p99["nginx"] / n["nginx"] - dp, cpu["nginx"] / n["nginx"]
    }
  }'
