# Sourced by .ci/test and .ci/demo: a private moto server (the AWS emulator) on a free
# loopback port, installed into a venv on first use and stopped when the script exits.
#
# After `moto_start`: $moto_port, $moto_pid, $moto_log are set and the AWS_* variables
# point the SDK (and boto3) at the emulator with dummy credentials.

venv="${TUGBOAT_VENV:-$root/.venv}"
# Exact pin: the emulator tests assert what this version does (see design.md for what it
# does and does not emulate).
moto_requirement="moto[server]==5.2.5"
moto_pid=""
moto_port=""
moto_log=""

moto_ensure_installed() {
    if [[ -x "$venv/bin/moto_server" ]]; then
        return
    fi
    echo "== creating $venv with $moto_requirement" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "$moto_requirement"
}

moto_free_port() {
    # Bind port 0 and report what the kernel chose; the socket closes at once, so another
    # process could take the port before moto does: moto_start retries for that reason.
    "$venv/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

moto_answers() {
    "$venv/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()' "http://127.0.0.1:$1/moto-api/" \
        >/dev/null 2>&1
}

moto_stop() {
    if [[ -n "$moto_pid" ]] && kill -0 "$moto_pid" 2>/dev/null; then
        kill "$moto_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$moto_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    moto_pid=""
}

moto_cleanup() {
    moto_stop
    if [[ -n "$moto_log" ]]; then
        rm -f "$moto_log"
    fi
}

moto_start() {
    moto_ensure_installed
    trap moto_cleanup EXIT
    # Turn signals into an exit so the EXIT trap stops the server.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    moto_log="$(mktemp -t tugboat-moto.XXXXXX.log)"
    local attempt port
    for attempt in 1 2 3; do
        port="$(moto_free_port)"
        "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 </dev/null &
        moto_pid=$!
        # moto takes 1-3 s to import its service models.
        for _ in $(seq 1 150); do
            if ! kill -0 "$moto_pid" 2>/dev/null; then
                break # died, most likely because the port was taken meanwhile
            fi
            if moto_answers "$port"; then
                moto_port="$port"
                moto_export_env
                echo "== moto_server (pid $moto_pid) on $AWS_ENDPOINT_URL" >&2
                return 0
            fi
            sleep 0.2
        done
        echo "moto did not start on port $port (attempt $attempt); its log:" >&2
        tail -n 20 "$moto_log" >&2 || true
        moto_stop
    done
    echo "error: could not start moto_server from $venv" >&2
    return 1
}

moto_export_env() {
    export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    # A developer's own profile or session token must never reach the emulator runs.
    unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

moto_log_tail() {
    if [[ -n "$moto_log" ]]; then
        tail -n "${1:-60}" "$moto_log" >&2 || true
    fi
}
