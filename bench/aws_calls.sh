#!/usr/bin/env bash
# Benchmark: AWS calls per no-op pass (2 and 50 workloads) and the time from an S3
# document change to RegisterTaskDefinition, against moto's server through the real SDK.
# Usage: bench/aws_calls.sh [--changes N]
# Uses $AWS_ENDPOINT_URL if set; otherwise starts moto on a free port and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
moto_pid=""
if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    moto="${MOTO_SERVER:-/work/main/.venv/bin/moto_server}"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$moto" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    moto_pid=$!
    trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    for _ in $(seq 50); do curl -sf "$AWS_ENDPOINT_URL/moto-api/" >/dev/null && break; sleep 0.2; done
fi
cargo run -q -p tugboat --example aws_calls -- "$@"
