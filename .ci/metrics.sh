# Sourced by .ci/test after moto.sh: the metric servers the analysis tests measure
# against, each on a free loopback port, stopped when the script exits.
#
# - A real Prometheus (Debian's `prometheus` package; installed with apt-get when missing
#   and this runs as root or with sudo) scraping a real process of ours: the backend
#   workload (target/debug/backend), whose inference upstream is deliberately
#   unreachable so /api/predict answers 5xx. Exports TUGBOAT_PROMETHEUS_URL and
#   TUGBOAT_SCRAPED_BACKEND_URL.
# - ministack (PyPI, pinned), an emulator that speaks CloudWatch's RPC v2 CBOR protocol,
#   in a venv of its own (it pins a botocore older than moto's boto3 needs). Only the
#   CloudWatch client is pointed at it: AWS_ENDPOINT_URL_CLOUDWATCH.

ministack_venv="${TUGBOAT_MINISTACK_VENV:-$root/.venv-ministack}"
ministack_requirements=("ministack==1.5.33" "cbor2==6.3.0")
metrics_pids=()
metrics_dir=""

metrics_cleanup() {
    local pid
    for pid in "${metrics_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${metrics_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    metrics_pids=()
    if [[ -n "$metrics_dir" ]]; then
        rm -rf "$metrics_dir"
    fi
}

metrics_wait_http() {
    # metrics_wait_http URL PID NAME: up to 15 s for URL to answer 2xx.
    local _
    for _ in $(seq 1 75); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "error: $3 exited before answering; its log:" >&2
            tail -n 30 "$metrics_dir/$3.log" >&2 || true
            return 1
        fi
        if "$venv/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()' "$1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "error: $3 did not answer $1 within 15 s; its log:" >&2
    tail -n 30 "$metrics_dir/$3.log" >&2 || true
    return 1
}

prometheus_ensure_installed() {
    if command -v prometheus >/dev/null 2>&1; then
        return
    fi
    echo "== installing Debian's prometheus package (the Prometheus provider's tests need a real server)" >&2
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y prometheus >&2
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get install -y prometheus >&2
    else
        echo "error: prometheus is not installed and this user cannot install it (not root, no sudo); install Debian's prometheus package" >&2
        return 1
    fi
}

ministack_ensure_installed() {
    if [[ -x "$ministack_venv/bin/ministack" ]]; then
        return
    fi
    echo "== creating $ministack_venv with ${ministack_requirements[*]}" >&2
    python3 -m venv "$ministack_venv"
    "$ministack_venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "${ministack_requirements[@]}"
}

metrics_start() {
    prometheus_ensure_installed
    ministack_ensure_installed
    metrics_dir="$(mktemp -d -t tugboat-metrics.XXXXXX)"
    trap 'metrics_cleanup; moto_cleanup' EXIT

    # The process Prometheus scrapes: our backend, its upstream a closed port.
    cargo build --quiet -p tugboat-backend --bin backend
    local backend_port prom_port ms_port
    backend_port="$(moto_free_port)"
    HOST=127.0.0.1 PORT="$backend_port" ML_SERVICE_URL="http://127.0.0.1:9" ML_RETRIES=0 \
        LOG_LEVEL=warn "$root/target/debug/backend" >"$metrics_dir/backend.log" 2>&1 </dev/null &
    metrics_pids+=($!)
    metrics_wait_http "http://127.0.0.1:$backend_port/health" "$!" backend
    export TUGBOAT_SCRAPED_BACKEND_URL="http://127.0.0.1:$backend_port"

    prom_port="$(moto_free_port)"
    cat >"$metrics_dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: backend
    static_configs:
      - targets: ["127.0.0.1:$backend_port"]
YAML
    prometheus --config.file="$metrics_dir/prometheus.yml" \
        --storage.tsdb.path="$metrics_dir/tsdb" \
        --web.listen-address="127.0.0.1:$prom_port" >"$metrics_dir/prometheus.log" 2>&1 </dev/null &
    metrics_pids+=($!)
    metrics_wait_http "http://127.0.0.1:$prom_port/-/ready" "$!" prometheus
    export TUGBOAT_PROMETHEUS_URL="http://127.0.0.1:$prom_port"
    echo "== prometheus on $TUGBOAT_PROMETHEUS_URL scraping the backend on $TUGBOAT_SCRAPED_BACKEND_URL" >&2

    ms_port="$(moto_free_port)"
    GATEWAY_PORT="$ms_port" BIND_HOST=127.0.0.1 "$ministack_venv/bin/ministack" \
        >"$metrics_dir/ministack.log" 2>&1 </dev/null &
    metrics_pids+=($!)
    metrics_wait_http "http://127.0.0.1:$ms_port/_ministack/health" "$!" ministack \
        || metrics_wait_http "http://127.0.0.1:$ms_port/" "$!" ministack
    export AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$ms_port"
    echo "== ministack (CloudWatch only) on $AWS_ENDPOINT_URL_CLOUDWATCH" >&2
}
