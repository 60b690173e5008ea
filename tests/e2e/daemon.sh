#!/usr/bin/env bash
# tests/e2e/daemon.sh: end-to-end tests of hyprd and the hypr CLI with real
# microVMs: the full lifecycle through the CLI, a kill -9 of hyprd while VMs
# run, a VMM killed from outside, 50 concurrent API clients, bad requests.
# Needs a /dev/kvm that boots Linux: run it through tests/kvmhost/vmrun (as
# tests/run does). Prints `ok NAME` / `FAIL NAME: why`; exits 1 if any
# failed. The image is build/test-images/docker-save.tar (tests/e2e/prepare):
# busybox with Entrypoint ["/bin/sh", "-c"], User 1000:1000, WorkingDir /data.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=$(mktemp -d /tmp/hypr-daemon-e2e.XXXXXX)
export HYPR_DATA_DIR=$work/data
export HYPR_RUNTIME_DIR=/run/hypr-e2e-$$
unset HYPR_HOST
# no egress NAT: the tests leave the host's forwarding and nftables alone
# (net.sh's egress cases turn it on with --egress, in the test host only)
export HYPR_EGRESS=0
# and no DNS forwarding to the machine's resolvers (as tests/lib/e2e.sh)
export HYPR_DNS_UPSTREAM=none
SOCK=$HYPR_RUNTIME_DIR/hypr.sock
HYPR=$ROOT/bin/hypr
nfail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
# check NAME CONDITION-COMMAND... : ok when the command succeeds
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "${why:-check failed}"; fi; why=; }
api() { curl -s --max-time 60 --unix-socket "$SOCK" -o "$work/body" -w '%{http_code}' "$@"; }

hyprd_pid=
start_hyprd() {
    "$ROOT/bin/hyprd" ${HYPRD_ARGS:-} >>"$work/hyprd.log" 2>&1 &
    hyprd_pid=$!
    for _ in $(seq 100); do
        [ -S "$SOCK" ] && "$HYPR" health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "hyprd did not come up:"; tail -20 "$work/hyprd.log"
    return 1
}
cleanup() {
    "$HYPR" rm -f web batch >/dev/null 2>&1
    [ -n "$hyprd_pid" ] && kill "$hyprd_pid" 2>/dev/null
    pkill -f "hypr-shim --dir $work" 2>/dev/null
    sleep 0.5
    for ns in "$HYPR_RUNTIME_DIR"/netns/*; do [ -e "$ns" ] && umount -l "$ns" 2>/dev/null; done
    rm -rf "$work" "$HYPR_RUNTIME_DIR"
}
trap cleanup EXIT

if ! start_hyprd; then
    fail daemon_start "hyprd did not start"
    exit 1
fi
ok daemon_start

# images through the API
"$HYPR" load -i build/test-images/docker-save.tar >"$work/out" 2>&1
why="$(cat "$work/out")"; check load grep -q "busybox:latest" "$work/out"

# foreground run: output streamed, the workload's exit code returned, --rm
out=$("$HYPR" run --rm --name once busybox 'echo hello from the vm; exit 3' 2>"$work/err"); rc=$?
why="rc=$rc out=$out err=$(tail -c 300 "$work/err")"
check run_foreground_exit_code test "$rc" = 3 -a "$out" = "hello from the vm"
why="once still listed"; check run_rm_removed bash -c "! '$HYPR' ps -a --format json | grep -q '\"once\"'"

# foreground run -i: the client's stdin is the workload's, its end is EOF
out=$(printf 'one\ntwo\n' | "$HYPR" run -i --rm busybox 'cat; echo done' 2>"$work/err"); rc=$?
why="rc=$rc out=$out err=$(tail -c 300 "$work/err")"
check run_interactive_stdin test "$rc" = 0 -a "$out" = "one
two
done"

# detached run, ps
id=$("$HYPR" run -d --name web busybox 'echo web started; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done' 2>"$work/err")
why="id=$id err=$(cat "$work/err")"; check run_detached_id bash -c "[[ '$id' =~ ^[0-9a-f]{64}$ ]]"
"$HYPR" ps >"$work/ps" 2>&1
why="$(cat "$work/ps")"; check ps_running bash -c "grep -E '^${id:0:12} +busybox .* Up .* web$' '$work/ps' >/dev/null"

# exec: output, exit code, stdin
for _ in $(seq 60); do "$HYPR" logs web 2>/dev/null | grep -q "web started" && break; sleep 1; done
out=$("$HYPR" exec web -- ps 2>&1); rc=$?
why="rc=$rc $out"; check exec_ps bash -c "[ $rc = 0 ] && grep -q 'while true' <<<'$out'"
"$HYPR" exec web sh -c 'echo out; echo err >&2; exit 7' >"$work/out" 2>"$work/err"; rc=$?
why="rc=$rc out=$(cat "$work/out") err=$(cat "$work/err")"
check exec_exit_code_streams test "$rc" = 7 -a "$(cat "$work/out")" = out -a "$(cat "$work/err")" = err
out=$(printf 'line one\nline two\n' | "$HYPR" exec -i web -- sh -c 'cat; echo done' 2>&1); rc=$?
why="rc=$rc $out"; check exec_stdin test "$rc" = 0 -a "$out" = "line one
line two
done"
out=$("$HYPR" exec -u root -w /tmp -e K=V web -- sh -c 'echo "$(id -u) $(pwd) $K"' 2>&1)
why="$out"; check exec_user_workdir_env test "$out" = "0 /tmp V"

# logs: all, tail, follow ends when the VM stops
"$HYPR" logs web >"$work/logs" 2>&1
why="$(head -c 300 "$work/logs")"; check logs grep -q "web started" "$work/logs"
out=$("$HYPR" logs --tail 1 web 2>&1)
why="$out"; check logs_tail bash -c "[ \$(printf '%s\n' '$out' | wc -l) = 1 ] && grep -q '^tick' <<<'$out'"
# kill -9 of hyprd while the VM runs; a new hyprd re-attaches
kill -9 "$hyprd_pid"; wait "$hyprd_pid" 2>/dev/null
start_hyprd
"$HYPR" ps >"$work/ps" 2>&1
why="$(cat "$work/ps"; tail -5 "$work/hyprd.log")"; check restart_ps_still_running grep -q " Up .* web$" "$work/ps"
out=$("$HYPR" exec web -- echo still here 2>&1)
why="$out"; check restart_exec test "$out" = "still here"
n=$(pgrep -fc "^$ROOT/bin/hypr-vmm .*--hostname ${id:0:12}")
why="$n VMM processes"; check restart_no_second_copy test "$n" = 1
"$HYPR" logs -f web >"$work/follow" 2>&1 &
follow_pid=$!

# stop: graceful through the agent; logs -f ends
t0=$(date +%s)
"$HYPR" stop -t 2 web >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check stop test "$rc" = 0
"$HYPR" ps -a >"$work/ps" 2>&1
why="$(cat "$work/ps")"; check ps_exited grep -qE "Exited \((143|137)\) .* web$" "$work/ps"
for _ in $(seq 30); do kill -0 "$follow_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$follow_pid" 2>/dev/null; then fail logs_follow_ends "logs -f still running after stop"; kill "$follow_pid"
else why="$(tail -c 300 "$work/follow")"; check logs_follow_ends grep -q "tick" "$work/follow"; fi

# start again, restart
"$HYPR" start web >/dev/null 2>"$work/err"; rc=$?
why="rc=$rc $(cat "$work/err")"; check start_again bash -c "[ $rc = 0 ] && '$HYPR' ps | grep -q ' Up .* web$'"
"$HYPR" restart -t 1 web >/dev/null 2>"$work/err"; rc=$?
rc2=$("$HYPR" inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["RestartCount"])')
why="rc=$rc restarts=$rc2 $(cat "$work/err")"; check restart test "$rc" = 0 -a "$rc2" -ge 2

# a VMM killed from outside is reported exited
pid=$("$HYPR" inspect web | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["State"]["Pid"])')
kill -9 "$pid"
for _ in $(seq 50); do "$HYPR" ps -a | grep -q "Exited (137).* web$" && break; sleep 0.2; done
why="$("$HYPR" ps -a)"; check vmm_killed_reported bash -c "'$HYPR' ps -a | grep -q 'Exited (137).* web$'"

# 50 concurrent API clients, mixed reads and creates
cpids=()
for i in $(seq 50); do
    case $((i % 3)) in
    0) curl -s --max-time 60 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' http://h/v1/vms?all=1 ;;
    1) curl -s --max-time 60 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' http://h/v1/health ;;
    2) curl -s --max-time 60 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' -X POST \
           -d "{\"Image\":\"busybox\",\"Name\":\"c$i\"}" http://h/v1/vms ;;
    esac >"$work/c$i" &
    cpids+=($!)
done
wait "${cpids[@]}" 2>/dev/null
codes=$(cat "$work"/c* | sort | uniq -c | tr -s ' ' | tr '\n' ',')
created=$("$HYPR" ps -a --format json | grep -o '"c[0-9]*"' | wc -l)
why="codes: $codes created: $created"
check concurrent_clients bash -c "! cat '$work'/c* | grep -vqE '^(200|201)$' && [ \$(cat '$work'/c* | wc -l) = 50 ] && [ $created = 17 ]"
for i in $(seq 2 6 50); do "$HYPR" rm "c$i" >/dev/null 2>&1; done  # c5, c11... stay for the restart check

# bad requests: 4xx with a message, the daemon still healthy
code=$(api -X POST -d '{"Image": ' http://h/v1/vms); why="$code $(cat "$work/body")"
check bad_json bash -c "[ $code = 400 ] && grep -q 'invalid JSON' '$work/body'"
code=$(api -X POST -d '{"Image":"busybox","Bogus":1}' http://h/v1/vms); why="$code $(cat "$work/body")"
check unknown_field bash -c "[ $code = 400 ] && grep -q 'Bogus' '$work/body'"
code=$(head -c 3000000 /dev/zero | tr '\0' 'x' | api -X POST --data-binary @- http://h/v1/vms); why="$code"
check huge_body test "$code" = 413
code=$(api http://h/v1/vms/no-such-vm); why="$code $(cat "$work/body")"
check unknown_vm bash -c "[ $code = 404 ] && grep -q 'no such VM' '$work/body'"
code=$(api -X POST -d '{"Image":"busybox","Cpus":"many"}' http://h/v1/vms); why="$code $(cat "$work/body")"
check wrong_type bash -c "[ $code = 400 ] && grep -q 'Cpus' '$work/body'"
code=$(api -X POST -d '[1,2]' http://h/v1/vms); why="$code"; check not_an_object test "$code" = 400
code=$(api -X POST -d '{"Image":"nosuchimage:1"}' http://h/v1/vms); why="$code"; check unknown_image test "$code" = 404
"$HYPR" health >"$work/out" 2>&1; why="$(cat "$work/out")"; check healthy_after_bad_requests grep -qi ok "$work/out"

# rm: refused while running, forced works; state survives a clean restart
"$HYPR" start web >/dev/null 2>&1
"$HYPR" rm web >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check rm_running_refused bash -c "[ $rc != 0 ] && grep -qi running '$work/out'"
kill "$hyprd_pid"; wait "$hyprd_pid" 2>/dev/null
# the restarted daemon also listens on TCP (bearer token) and serves metrics
read -r tport mport < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
HYPRD_ARGS="--tcp 127.0.0.1:$tport --token-file $work/token --metrics 127.0.0.1:$mport" start_hyprd
why="$("$HYPR" ps -a)"; check clean_restart_keeps_state bash -c "'$HYPR' ps | grep -q ' Up .* web$' && '$HYPR' ps -a | grep -q ' c5$' && ! '$HYPR' ps -a | grep -q ' c8$'"
"$HYPR" rm -f web >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check rm_force bash -c "[ $rc = 0 ] && ! '$HYPR' ps -a | grep -q ' web$' && [ ! -d '$HYPR_DATA_DIR/vms/$id' ]"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$tport/v1/vms"); why="$code"
check tcp_without_token_401 test "$code" = 401
out=$(HYPR_HOST=tcp://127.0.0.1:$tport HYPR_TOKEN=$(cat "$work/token") "$HYPR" ps -a 2>&1); why="$out"
check tcp_with_token bash -c "grep -q ' c5$' <<<'$out'"
curl -s "http://127.0.0.1:$mport/metrics" >"$work/metrics"; why="$(head -c 300 "$work/metrics")"
check metrics bash -c "grep -q '^hypr_vms{state=\"created\"} [1-9]' '$work/metrics' && grep -q '^hypr_api_requests_total{code=\"200\"}' '$work/metrics'"

[ $nfail -eq 0 ]
