#!/usr/bin/env bash
# Benchmark: one controller, many applications. AWS calls per no-op pass and pass
# latency for 20 applications of 10 canary workloads each vs 1 application, against
# moto's server through the real SDK, all applications sharing one set of token
# buckets. Figures are ratios against the single application measured in the same run.
# Usage: bench/multiapp.sh [--apps N]
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
cargo run -q -p tugboat --example multiapp -- "$@"
