#!/usr/bin/env bash
# tests/e2e/compose.sh: end-to-end tests of compose stacks: `hypr compose`
# against hyprd's reconciler, with real microVMs. Needs a /dev/kvm that boots
# Linux: run it through tests/kvmhost/vmrun (as tests/run does). Prints `ok
# NAME` / `FAIL NAME: why`; exits 1 if any failed.
#
# Cases: health-gated start order (api starts only once db is healthy, and
# reaches it by its service name), `up` twice changes nothing, a changed
# environment rolls the service (new VM, update_completed), a crashing
# update is rolled back automatically, a VM killed from outside is restarted
# by its policy, hyprd killed with SIGKILL in the middle of an update
# converges after a restart with no VM lost or duplicated, POST /v1/stacks
# with YAML text, and `compose down -v` removes VMs, network and volume.
# The image is build/test-images/docker-save.tar (tests/e2e/prepare):
# busybox:latest, Entrypoint ["/bin/sh", "-c"], User 1000.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=$(mktemp -d /tmp/hypr-compose-e2e.XXXXXX)
export HYPR_DATA_DIR=$work/data
export HYPR_RUNTIME_DIR=/run/hypr-compose-$$
export HYPR_EGRESS=0
unset HYPR_HOST
HYPR=$ROOT/bin/hypr
nfail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "${why:-check failed}"; fi; why=; }
api() { curl -s --max-time 20 --unix-socket "$HYPR_RUNTIME_DIR/hypr.sock" "$@"; }
stack_json() { api "http://hyprd/v1/stacks/$1"; }
# wait_for SECONDS CMD...: polls CMD every second
wait_for() { local s=$1; shift; for _ in $(seq "$s"); do "$@" && return 0; sleep 1; done; return 1; }
stack_status() { stack_json "$1" | jq -r .Status; }
# the running VMs of a service: "name id hash" lines
running_of() { stack_json "$1" | jq -r --arg s "$2" '.Services[] | select(.Name == $s) | .Instances[] | select(.Status == "running") | "\(.Name) \(.Id) \(.Hash)"'; }
svc_field() { stack_json "$1" | jq -r --arg s "$2" ".Services[] | select(.Name == \$s) | $3"; }
vm_names() { api 'http://hyprd/v1/vms?all=1' | jq -r '.[].Name'; }
inspect() { api "http://hyprd/v1/vms/$1"; }
# wait_log VM SECONDS PATTERN: until the VM's console has PATTERN
wait_log() { for _ in $(seq "$2"); do "$HYPR" logs "$1" 2>/dev/null | grep -q -- "$3" && return 0; sleep 1; done; return 1; }
has_event() { stack_json "$1" | jq -e --arg a "$2" '[.Events[] | select(.Action == $a)] | length > 0' >/dev/null; }

. tests/lib/e2e.sh
on_fail_dump() {
    echo "--- hyprd log (tail)"; tail -30 "$work/hyprd.log"
    echo "--- stack"; stack_json shop | jq -c '{Status, Services: [.Services[] | {Name, Status, Update, I: [.Instances[] | {Name, Status, Health, ExitCode}]}], Events: .Events[-12:]}'
}
trap e2e_cleanup EXIT

if ! e2e_start_hyprd; then
    fail daemon_start "hyprd did not start"
    exit 1
fi
"$HYPR" load -i build/test-images/docker-save.tar >"$work/out" 2>&1 || { fail load "$(cat "$work/out")"; exit 1; }

proj=$work/shop
mkdir -p "$proj"
# db listens only once "ready" (3 s after start) and is healthy from then on;
# api checks at its start that db answers, by the service name.
write_compose() { # API_ENV API_COMMAND
    cat >"$proj/compose.yaml" <<EOF
name: shop
services:
  db:
    image: busybox:latest
    command: ["sleep 3; touch /tmp/ready; echo db-ready; exec busybox nc -ll -p 5432 -e echo db-answer"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      timeout: 10s
      retries: 3
      start_period: 60s
      start_interval: 1s
    volumes:
      - dbdata:/data
  api:
    image: busybox:latest
    depends_on:
      db:
        condition: service_healthy
    environment:
      API_VERSION: "$1"
    command: ["$2"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/api-ok"]
      interval: 1s
      retries: 2
      start_period: 90s
      start_interval: 1s
    restart: always
    deploy:
      update_config:
        failure_action: rollback
        monitor: 4s
        order: stop-first
volumes:
  dbdata:
EOF
}
API_OK='echo api-$$API_VERSION $$(busybox nc -w 5 db 5432 </dev/null); touch /tmp/api-ok; exec sleep 3600'
write_compose v1 "$API_OK"

# ---- health-gated start order ----
(cd "$proj" && timeout 600 "$HYPR" compose up -d) >"$work/out" 2>&1; rc=$?
why="rc=$rc $(tail -5 "$work/out")"; check compose_up_converges test "$rc" = 0
wait_log shop-api-1 60 'api-v1'
out=$("$HYPR" logs shop-api-1 2>&1)
why="$out"; check api_started_after_db_healthy grep -q 'api-v1 db-answer' <<<"$out"
why="$(stack_json shop | jq -c .Services)"; check db_is_healthy test "$(svc_field shop db '.Instances[0].Health')" = healthy
out=$(cd "$proj" && "$HYPR" compose ps 2>&1)
why="$out"; check compose_ps_lists_instances eval 'grep -q shop-api-1 <<<"$out" && grep -q shop-db-1 <<<"$out"'
[ "$nfail" = 0 ] || on_fail_dump

# ---- up again: nothing changes ----
before=$(running_of shop api; running_of shop db)
(cd "$proj" && timeout 300 "$HYPR" compose up -d) >"$work/out" 2>&1; rc=$?
sleep 2
after=$(running_of shop api; running_of shop db)
why="rc=$rc before=[$before] after=[$after]"; check compose_up_twice_is_a_noop test "$rc" = 0 -a "$before" = "$after"

# ---- a changed environment: rolling update ----
old_api=$(running_of shop api)
write_compose v2 "$API_OK"
(cd "$proj" && timeout 600 "$HYPR" compose up -d) >"$work/out" 2>&1; rc=$?
wait_for 120 has_event shop update_completed
new_api=$(running_of shop api)
why="rc=$rc old=[$old_api] new=[$new_api] $(tail -3 "$work/out")"
check rolling_update_replaces_the_vm eval '[ -n "$new_api" ] && [ "${old_api#* }" != "${new_api#* }" ] && [ $(wc -l <<<"$new_api") = 1 ]'
wait_log "$(cut -d" " -f1 <<<"$new_api")" 60 'api-v2'
out=$("$HYPR" logs "$(cut -d" " -f1 <<<"$new_api")" 2>&1)
why="$out"; check updated_vm_has_new_env grep -q 'api-v2 db-answer' <<<"$out"
db_now=$(running_of shop db)
why="before=[$before] now=[$db_now]"; check unchanged_service_untouched grep -qF "$db_now" <<<"$before"
[ "$nfail" = 0 ] || on_fail_dump

# ---- a crashing update is rolled back ----
good=$(running_of shop api)
write_compose v3 'echo api-v3-crashing; exit 3'
(cd "$proj" && timeout 600 "$HYPR" compose up -d) >"$work/out" 2>&1
why="$(stack_json shop | jq -c '.Events[-6:]')"; check broken_update_rolled_back wait_for 180 has_event shop rollback_completed
wait_for 60 test -n "$(running_of shop api)"
now=$(running_of shop api)
wait_log "$(cut -d" " -f1 <<<"$now")" 60 'api-v2'
out=$("$HYPR" logs "$(cut -d" " -f1 <<<"$now")" 2>&1)
why="good=[$good] now=[$now] $out"; check rollback_restores_previous_config eval 'grep -q api-v2 <<<"$out" && [ "$(cut -d" " -f3 <<<"$now")" = "$(cut -d" " -f3 <<<"$good")" ]'
why="$(svc_field shop api .Update)"; check update_state_rolled_back test "$(svc_field shop api .Update.State)" = rolled_back
[ "$nfail" = 0 ] || on_fail_dump

# ---- restart policy: a VM killed from outside ----
write_compose v2 "$API_OK"
(cd "$proj" && timeout 600 "$HYPR" compose up -d) >"$work/out" 2>&1
wait_for 120 test "$(svc_field shop api .Status)" = running
vm=$(running_of shop api | cut -d" " -f1)
pid=$(inspect "$vm" | jq -r .State.Pid)
[ -n "$pid" ] && [ "$pid" != 0 ] && kill -9 "$pid"
restarted() { [ "$(inspect "$vm" | jq -r '.State | "\(.Status) \(.RestartCount)"')" = "running 1" ]; }
why="vm=$vm pid=$pid $(inspect "$vm" | jq -c .State)"; check killed_vm_restarted_by_policy wait_for 120 restarted

# ---- hyprd killed with SIGKILL in the middle of an update ----
h0=$(svc_field shop api .Hash)
write_compose v4 "$API_OK"
(cd "$proj" && timeout 60 "$HYPR" compose up -d >/dev/null 2>&1 &)
# the new config is stored and its rolling update has begun
update_begun() { [ "$(svc_field shop api .Hash)" != "$h0" ] && [ "$(svc_field shop api .Update.State)" = updating ]; }
why="h0=$h0 $(svc_field shop api .Update)"; check update_in_flight_before_crash wait_for 60 update_begun
kill -9 "$hyprd_pid"
wait "$hyprd_pid" 2>/dev/null
e2e_start_hyprd || fail hyprd_restart "hyprd did not start again"
converged_v4() { [ "$(svc_field shop api .Status)" = running ] && [ "$(running_of shop api | cut -d" " -f3)" = "$(svc_field shop api .Hash)" ]; }
wait_for 240 converged_v4
vms=$(vm_names | sort)
api_vms=$(grep -c '^shop-api' <<<"$vms")
wait_log "$(running_of shop api | cut -d" " -f1)" 60 'api-v4'
out=$("$HYPR" logs "$(running_of shop api | cut -d" " -f1)" 2>&1)
why="vms=[$vms] $out"; check crash_mid_update_converges eval '[ "$api_vms" = 1 ] && grep -q api-v4 <<<"$out" && [ "$(grep -c "^shop-db" <<<"$vms")" = 1 ]'
[ "$nfail" = 0 ] || on_fail_dump

# ---- the API: YAML text, errors with line and key ----
code=$(api -o "$work/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"Name": "bad", "Compose": "services:\n  a:\n    image: busybox:latest\n    ports: [\"80:abc\"]\n"}' http://hyprd/v1/stacks)
why="code=$code $(cat "$work/out")"; check api_refuses_bad_document_with_line_and_key eval '[ "$code" = 400 ] && grep -q "request:4" "$work/out" && grep -q "ports" "$work/out"'
code=$(api -o "$work/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"Name": "solo", "Compose": "services:\n  one:\n    image: busybox:latest\n    command: [\"echo solo-${GREETING:-hi}; exec sleep 600\"]\n"}' http://hyprd/v1/stacks)
why="code=$code $(cat "$work/out")"; check api_post_yaml_202 test "$code" = 202
solo_up() { [ "$(stack_status solo)" = converged ]; }
why="$(stack_json solo | jq -c '{Status, S: .Services}')"; check api_stack_converges wait_for 120 solo_up
code=$(api -o /dev/null -w '%{http_code}' -X DELETE http://hyprd/v1/stacks/solo)
why="code=$code"; check api_delete_stack eval '[ "$code" = 204 ] && ! vm_names | grep -q solo-one'

# ---- compose down -v ----
(cd "$proj" && timeout 300 "$HYPR" compose down -v) >"$work/out" 2>&1; rc=$?
left=$(vm_names | grep '^shop-')
nets=$("$HYPR" network ls 2>/dev/null | grep -c 'shop_default')
vols=$("$HYPR" volume ls -q 2>/dev/null | grep -c 'shop_dbdata')
why="rc=$rc left=[$left] nets=$nets vols=$vols $(cat "$work/out")"
check compose_down_removes_everything eval '[ "$rc" = 0 ] && [ -z "$left" ] && [ "$nets" = 0 ] && [ "$vols" = 0 ]'
code=$(api -o /dev/null -w '%{http_code}' http://hyprd/v1/stacks/shop)
why="code=$code"; check stack_gone_after_down test "$code" = 404

[ "$nfail" = 0 ]
