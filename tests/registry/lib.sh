# tests/registry/lib.sh: starts and stops local registries for the image
# tests and benchmarks (tests/e2e/images.sh, bench/pull); source it from
# bash. Everything listens on 127.0.0.1 only, on a free port; nothing here
# touches the network beyond loopback.
#
#   reg_start STATE STORAGE [none|htpasswd USERS|token TOKENSTATE]
#       starts Debian's docker-registry serving STORAGE (a directory it
#       creates if needed) with no auth, htpasswd basic auth for the
#       USER:PASSWORD lines of USERS, or token auth trusting the token
#       server of TOKENSTATE. STATE (a new directory) gets config.yml,
#       log, pid and port. Prints the port. Waits until /v2/ answers.
#   token_start STATE USERS [--allow-anonymous]
#       starts tests/registry/tokenserver.py with a fresh RSA key and
#       self-signed certificate; STATE gets key.pem, cert.pem, pid, port,
#       log (one line per token request). Prints the port.
#   proxy_start STATE UPSTREAM_PORT [faultproxy options]
#       starts tests/registry/faultproxy.py in front of 127.0.0.1:PORT;
#       STATE gets pid, port, log. Prints the port.
#   svc_stop STATE
#       stops what STATE's pid names (TERM, then KILL) and waits for it.
#   reg_push SRC REF [--all]
#       `skopeo copy` from SRC (e.g. oci:DIR:latest) to docker://REF over
#       plain HTTP.
# Callers should svc_stop every STATE they started on every exit path
# (a trap): each process's pid is in STATE/pid.

REGLIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

reg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# _wait_port STATE: waits for STATE/port to appear (servers that pick their own port).
_wait_port() {
    local i
    for i in $(seq 100); do
        [ -s "$1/port" ] && { cat "$1/port"; return 0; }
        kill -0 "$(cat "$1/pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "registry lib: $1: the server did not start; its log:" >&2
    cat "$1/log" >&2 2>/dev/null
    return 1
}

reg_start() {
    local state=$1 storage=$2 mode=${3:-none} arg=${4:-} port try code auth=
    mkdir -p "$state" "$storage"
    case "$mode" in
    none) ;;
    htpasswd)
        : >"$state/htpasswd"
        while IFS=: read -r u p; do
            [ -n "$u" ] && htpasswd -Bbn "$u" "$p" | sed '/^$/d' >>"$state/htpasswd"
        done <"$arg"
        auth="auth:
  htpasswd:
    realm: hypr-test
    path: $state/htpasswd"
        ;;
    token)
        auth="auth:
  token:
    realm: http://127.0.0.1:$(cat "$arg/port")/token
    service: hypr-test-registry
    issuer: hypr-test-issuer
    rootcertbundle: $arg/cert.pem"
        ;;
    *) echo "reg_start: unknown auth mode $mode" >&2; return 1 ;;
    esac
    for try in 1 2 3 4 5; do
        port=$(reg_free_port)
        cat >"$state/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: hypr-test-secret
$auth
EOF
        docker-registry serve "$state/config.yml" >"$state/log" 2>&1 &
        echo $! >"$state/pid"
        for _ in $(seq 100); do
            code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null)
            case "$code" in 200 | 401) echo "$port" >"$state/port"; echo "$port"; return 0 ;; esac
            kill -0 "$(cat "$state/pid")" 2>/dev/null || break
            sleep 0.1
        done
        svc_stop "$state"
    done
    echo "reg_start: docker-registry did not start; its log:" >&2
    cat "$state/log" >&2
    return 1
}

token_start() {
    local state=$1 users=$2; shift 2
    mkdir -p "$state"
    rm -f "$state/port"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$state/key.pem" -out "$state/cert.pem" \
        -subj /CN=hypr-test-token -days 2 >/dev/null 2>&1 || { echo "token_start: openssl failed" >&2; return 1; }
    python3 "$REGLIB_DIR/tokenserver.py" --key "$state/key.pem" --cert "$state/cert.pem" \
        --port-file "$state/port" --issuer hypr-test-issuer --users "$users" --log "$state/requests" "$@" \
        >"$state/log" 2>&1 &
    echo $! >"$state/pid"
    _wait_port "$state"
}

proxy_start() {
    local state=$1 upstream=$2; shift 2
    mkdir -p "$state"
    rm -f "$state/port"
    python3 "$REGLIB_DIR/faultproxy.py" --upstream "127.0.0.1:$upstream" --port-file "$state/port" \
        --log "$state/requests" "$@" >"$state/log" 2>&1 &
    echo $! >"$state/pid"
    _wait_port "$state"
}

svc_stop() {
    local pid
    [ -f "$1/pid" ] || return 0
    pid=$(cat "$1/pid")
    rm -f "$1/pid"
    kill "$pid" 2>/dev/null || return 0
    # (wait only reaps our own children: servers started in $(...) are not)
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    return 0
}

reg_push() {
    local src=$1 ref=$2; shift 2
    skopeo --insecure-policy copy -q --dest-tls-verify=false "$@" "$src" "docker://$ref" >/dev/null
}
