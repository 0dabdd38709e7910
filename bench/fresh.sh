#!/usr/bin/env bash
# A newcomer's first answer: from `git clone` of this repository's HEAD to the first
# successful POST /api/predict through `./up`, on this machine.
#
# Clones HEAD into a temporary directory (an empty target/; crate sources are taken from
# ~/.cargo as they are, so download time is not counted), runs `./up --no-ui` there, and
# sends the predict request of bench/predict.json to the router every second until one
# answers 200. Prints the clone, build and start-up times (the build ends at cargo's
# `Finished` line) and the total. Figures, not a test.
#
# Usage: bench/fresh.sh             HEAD
#        REV=af530ca bench/fresh.sh another commit (a baseline, measured in the same sitting)
# Knobs: KEEP=1 keeps the clone (its target/ is a few GB).
# The router listens where manifests/local.yaml says (127.0.0.1:8080): keep it free.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BODY="$ROOT/bench/predict.json"
URL=http://127.0.0.1:8080/api/predict
WORK=$(mktemp -d)
LOG="$WORK/up.log"
UP_PID=""
cleanup() {
  if [ -n "$UP_PID" ]; then
    kill "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
  fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

if curl -s -o /dev/null --max-time 1 "$URL"; then
  echo "something already answers on $URL: stop it first" >&2
  exit 1
fi

now() { date +%s.%N; }
started=$(now)
git clone -q "$ROOT" "$WORK/tugboat"
if [ -n "${REV:-}" ]; then git -C "$WORK/tugboat" checkout -q "$REV"; fi
cloned=$(now)
# Each line of ./up's output with the time it was printed, to find the build's end.
(cd "$WORK/tugboat" && exec ./up --no-ui) \
  > >(while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$LOG") 2>&1 &
UP_PID=$!
echo "== building and starting $(git -C "$WORK/tugboat" rev-parse --short HEAD) in $WORK/tugboat (log: $LOG)" >&2
answered=""
while kill -0 "$UP_PID" 2>/dev/null; do
  if code=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' --max-time 2 \
    -H 'content-type: application/json' --data-binary @"$BODY" "$URL") && [ "$code" = 200 ]; then
    answered=$(now)
    break
  fi
  sleep 1
done
if [ -z "$answered" ]; then
  echo "./up ended before answering; the end of its log:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
built=$(awk '/Finished/ {print $1; exit}' "$LOG")
awk -v s="$started" -v c="$cloned" -v b="$built" -v a="$answered" 'BEGIN {
  printf "clone:          %6.1f s\n", c - s
  if (b != "") {
    printf "build:          %6.1f s\n", b - c
    printf "start + answer: %6.1f s\n", a - b
  }
  printf "total:          %6.1f s (%d min %02d s) from git clone to the first prediction\n", a - s, int((a - s) / 60), int(a - s) % 60
}'
echo "answer: $(head -c 200 "$WORK/answer.json")"
