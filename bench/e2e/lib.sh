# The pieces both end-to-end benchmarks share (sourced, not run): the tool checks, a scratch
# directory removed on exit with the nginx started in it, a free loopback port, a throwaway
# ECDSA certificate for 127.0.0.1 (a cheap handshake: the figures are the client's), and nginx
# pinned to a core, waited for until it accepts.
#
# Globals it sets: dir (the scratch directory), port, nginx_pid.

require_tools() { # tool...
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing $tool (run .ci/install-deps)" >&2; exit 2; }
    done
    [ -x /usr/bin/time ] || { echo "missing GNU time (run .ci/install-deps)" >&2; exit 2; }
}

require_sluice() { # binary...
    for bin in "$@"; do
        [ -x "$bin" ] || { echo "no sluice binary at $bin (cmake --build --preset bench)" >&2; exit 2; }
    done
}

cleanup() {
    if [ -n "${nginx_pid:-}" ]; then
        kill "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

# The scratch directory, a port and the certificate (key.pem, cert.pem in it).
setup_workdir() {
    dir=$(mktemp -d)
    nginx_pid=""
    trap cleanup EXIT
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
}

# CPU time (clock ticks, user + system) the nginx workers started by start_nginx have used: read
# before and after a client's run, it says how busy the server was, whether the client or the
# server set the rate.
server_ticks() {
    local total=0 pid f
    for pid in $(pgrep -P "$nginx_pid"); do
        read -r -a f < "/proc/$pid/stat" || continue
        total=$((total + f[13] + f[14]))
    done
    echo "$total"
}

start_nginx() { # core: runs $dir/nginx.conf, returns once it accepts on $port
    taskset -c "$1" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
    nginx_pid=$!
    for _ in $(seq 100); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nginx did not start on 127.0.0.1:$port:" >&2
    cat "$dir/error.log" >&2 || true
    exit 1
}
