#!/usr/bin/env bash
# Benchmark: AWS calls per no-op pass (2 and 50 workloads) and the time from an S3
# document change to RegisterTaskDefinition, against moto's server through the real SDK.
# Usage: bench/aws_calls.sh [--changes N]
# Uses $AWS_ENDPOINT_URL if set; otherwise starts moto (installing it like .ci/test does)
# on a free port and stops it afterwards.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    # shellcheck source=../.ci/moto.sh
    source "$root/.ci/moto.sh"
    moto_start
fi
cargo run -q -p tugboat --example aws_calls -- "$@"
