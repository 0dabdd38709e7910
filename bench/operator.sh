#!/usr/bin/env bash
# Operator command -> ModifyRule latency against the emulator: `tugboat run` as a process
# (poll 200ms, resync 2s, the inbox read every 1s between passes), `tugboat set-weight`
# run 24 times alternating 30/40 while a canary waits at its pause, each timed from the
# command's start until DescribeRules shows the weight. Prints p50/p90, and the command's
# own run time (start to exit) measured in the same run as the baseline.
#
#   bench/operator.sh            # needs TUGBOAT_VENV or a .venv (see .ci/test)
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/test -p tugboat --test aws_operator -- --ignored --nocapture bench_operator_command_to_modify_rule 2>&1 \
  | grep -E '^BENCH|test result|panicked'
