# tests/lib/e2e.sh: the hyprd of an end-to-end suite that runs VMs
# (tests/e2e/net.sh, compose.sh, build.sh); source it from bash after
# setting work (a scratch directory), HYPR_DATA_DIR, HYPR_RUNTIME_DIR and
# HYPR (bin/hypr).
#
#   e2e_start_hyprd   starts bin/hyprd in the background (its output appended
#                     to $work/hyprd.log, its pid in $hyprd_pid) and returns
#                     once `hypr health` answers; 1 (with the log's tail)
#                     after 30 s. May be called again after a crash test.
#   e2e_cleanup       removes every VM, stops hyprd and any hypr-shim left
#                     from $work, releases the networks' namespace mounts and
#                     removes $work and $HYPR_RUNTIME_DIR. For `trap ... EXIT`.
#
# Sourcing it sets HYPR_DNS_UPSTREAM=none (whatever the caller's environment
# says): the networks' DNS never forwards a VM's query to the machine's real
# resolvers in a test. A suite that tests forwarding sets it again after
# sourcing, to a resolver of its own on loopback (tests/e2e/net.sh).

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
hyprd_pid=
export HYPR_DNS_UPSTREAM=none

e2e_start_hyprd() {
    "$E2E_ROOT/bin/hyprd" >>"$work/hyprd.log" 2>&1 &
    hyprd_pid=$!
    for _ in $(seq 300); do
        "$HYPR" health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "hyprd did not come up:"; tail -20 "$work/hyprd.log"
    return 1
}

e2e_cleanup() {
    # shellcheck disable=SC2046
    "$HYPR" rm -f $("$HYPR" ps -aq 2>/dev/null) >/dev/null 2>&1
    [ -n "$hyprd_pid" ] && kill "$hyprd_pid" 2>/dev/null
    pkill -f "hypr-shim --dir $work" 2>/dev/null
    sleep 0.5
    for ns in "$HYPR_RUNTIME_DIR"/netns/*; do [ -e "$ns" ] && umount -l "$ns" 2>/dev/null; done
    rm -rf "$work" "$HYPR_RUNTIME_DIR"
}
