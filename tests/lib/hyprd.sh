# tests/lib/hyprd.sh: starts and stops a hyprd for tests, benchmarks and the
# demo (tests/e2e/images.sh, tests/e2e/prepare, bench/pull, scripts/demo.sh);
# source it from bash.
#
#   hyprd_start DATA_DIR RUNTIME_DIR [HYPRD_OPTIONS...]
#       starts bin/hyprd (or $HYPRD) in the background with
#       HYPR_DATA_DIR=DATA_DIR and HYPR_RUNTIME_DIR=RUNTIME_DIR (both created
#       if needed; the caller's other environment, e.g. HYPR_REGISTRY_AUTH_FILE
#       given as `VAR=x hyprd_start ...`, is the daemon's), its output in
#       RUNTIME_DIR/hyprd.log, its pid in RUNTIME_DIR/hyprd.pid. Returns once
#       `hypr health` answers (0), or 1 after printing the log when the
#       daemon exited or did not answer within HYPRD_START_TIMEOUT seconds
#       (default 60). Talk to it with HYPR_RUNTIME_DIR=RUNTIME_DIR bin/hypr ...
#   hyprd_stop RUNTIME_DIR
#       stops that daemon (TERM, then KILL after 10 s), waits for it and
#       unmounts its networks' namespaces (RUNTIME_DIR/netns/*); does
#       nothing when none runs there. Safe to call twice.
# Callers should hyprd_stop every RUNTIME_DIR they started on every exit
# path (a trap). Nothing here listens beyond the Unix socket.

HYPRD_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

hyprd_start() {
    local data=$1 run=$2 i pid
    shift 2
    local hyprd=${HYPRD:-$HYPRD_LIB_ROOT/bin/hyprd} hypr=${HYPR:-$HYPRD_LIB_ROOT/bin/hypr}
    local timeout=${HYPRD_START_TIMEOUT:-60}
    [ -x "$hyprd" ] || { echo "hyprd_start: $hyprd is not built (make bin/hyprd)" >&2; return 1; }
    [ -x "$hypr" ] || { echo "hyprd_start: $hypr is not built (make bin/hypr)" >&2; return 1; }
    mkdir -p "$data" "$run" || return 1
    # HYPR_EGRESS=0 unless asked: tests and benchmarks leave the host's IP
    # forwarding and nftables alone
    HYPR_EGRESS=${HYPR_EGRESS:-0} HYPR_DATA_DIR=$data HYPR_RUNTIME_DIR=$run "$hyprd" "$@" </dev/null >"$run/hyprd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$run/hyprd.pid"
    for i in $(seq $((timeout * 10))); do
        if HYPR_HOST= HYPR_RUNTIME_DIR=$run "$hypr" health >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "hyprd_start: hyprd exited; its log ($run/hyprd.log):" >&2
            cat "$run/hyprd.log" >&2
            rm -f "$run/hyprd.pid"
            return 1
        fi
        sleep 0.1
    done
    echo "hyprd_start: hyprd did not answer \`hypr health\` within ${timeout}s; its log:" >&2
    cat "$run/hyprd.log" >&2
    hyprd_stop "$run"
    return 1
}

hyprd_stop() {
    local run=$1 pid i
    [ -f "$run/hyprd.pid" ] || return 0
    pid=$(cat "$run/hyprd.pid")
    rm -f "$run/hyprd.pid"
    if kill -TERM "$pid" 2>/dev/null; then
        for i in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true # (callers may run with set -e)
        for i in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # The networks' namespaces are bind mounts that outlive hyprd (so its VMs
    # keep their network across a restart); a test's daemon is gone for good,
    # so release them, or removing RUN fails with EBUSY.
    for i in "$run"/netns/*; do
        if [ -e "$i" ]; then umount -l "$i" 2>/dev/null || true; fi
    done
    return 0
}
