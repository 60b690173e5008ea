#!/usr/bin/env bash
# tests/e2e/net.sh: end-to-end tests of networks, published ports, DNS
# service discovery, volumes, bind mounts (virtio-fs) and tmpfs through
# hyprd and the hypr CLI, with real microVMs, bridges, TAPs and network
# namespaces. Needs a /dev/kvm that boots Linux: run it through
# tests/kvmhost/vmrun (as tests/run does). Prints `ok NAME` / `FAIL NAME:
# why`; exits 1 if any failed. Traffic goes only to the test host's loopback,
# to addresses inside the namespaces hyprd creates and, for the egress
# cases, to a dummy address the test adds inside the test host; the DNS
# forwarding cases forward to a dnsmasq of the test's own on 127.0.0.1
# (HYPR_DNS_UPSTREAM: never the machine's resolvers). The image is
# build/test-images/docker-save.tar (tests/e2e/prepare): busybox with
# Entrypoint ["/bin/sh", "-c"], User 1000:1000, WorkingDir /data.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
work=$(mktemp -d /tmp/hypr-net-e2e.XXXXXX)
export HYPR_DATA_DIR=$work/data
export HYPR_RUNTIME_DIR=/run/hypr-net-$$
unset HYPR_HOST
# no egress NAT: the tests leave the host's forwarding and nftables alone
# (net.sh's egress cases turn it on with --egress, in the test host only)
export HYPR_EGRESS=0
HYPR=$ROOT/bin/hypr
nfail=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "${why:-check failed}"; fi; why=; }
# has TEXT PATTERN / lacks TEXT PATTERN: grep -q on a string (no quoting traps)
has() { grep -q -- "$2" <<<"$1"; }
lacks() { ! grep -q -- "$2" <<<"$1"; }
# An HTTP GET with busybox nc (busybox-static's web client crashes in getaddrinfo):
# http_get HOST PORT PATH
HTTP_GET='http_get() { printf "GET %s HTTP/1.0\r\n\r\n" "$3" | busybox nc -w 10 "$1" "$2"; }'
# hypr run, bounded: a VM that never ends fails its case (rc 124) instead of
# hanging the suite
hrun() { timeout 300 "$HYPR" run "$@"; }
# waits up to $2 seconds for VM $1's logs to contain $3
wait_log() { for _ in $(seq "$2"); do "$HYPR" logs "$1" 2>/dev/null | grep -q "$3" && return 0; sleep 1; done; return 1; }

. tests/lib/e2e.sh
# The upstream resolver of the DNS forwarding cases: dnsmasq on the test
# host's loopback, answering outside.test and probe.test itself, with no
# upstream of its own, logging every query. hyprd's networks with egress
# forward to it (tests/lib/e2e.sh set HYPR_DNS_UPSTREAM=none: replaced).
dns_port=15353
dnsmasq_pid=
trap '[ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null; e2e_cleanup' EXIT
"$(command -v dnsmasq || echo /usr/sbin/dnsmasq)" --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=127.0.0.1 --port=$dns_port --address=/outside.test/10.1.2.3 --address=/probe.test/10.1.2.4 \
    --pid-file= --user=root --log-queries --log-facility="$work/dnsmasq.log" 2>>"$work/dnsmasq.err" &
dnsmasq_pid=$!
export HYPR_DNS_UPSTREAM=127.0.0.1:$dns_port
out=
for _ in $(seq 50); do
    out=$(busybox nslookup -port=$dns_port probe.test 127.0.0.1 2>&1) && has "$out" 10.1.2.4 && break
    sleep 0.2
done
why="$out $(cat "$work/dnsmasq.err" 2>&1)"; check dns_upstream_dnsmasq has "$out" 10.1.2.4

if ! e2e_start_hyprd; then
    fail daemon_start "hyprd did not start"
    exit 1
fi
"$HYPR" load -i build/test-images/docker-save.tar >"$work/out" 2>&1 || { fail load "$(cat "$work/out")"; exit 1; }

# ---- networks ----
"$HYPR" network ls >"$work/out" 2>&1
why="$(cat "$work/out")"; check network_default_exists grep -qE ' default +10\.88\.0\.0/16' "$work/out"
"$HYPR" network create app --subnet 10.89.0.0/24 >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_create test "$rc" = 0
"$HYPR" network create app2 --subnet 10.89.0.0/16 >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_overlap_refused bash -c "[ $rc != 0 ] && grep -q 'overlaps network .app.' '$work/out'"
"$HYPR" network create app >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_name_in_use bash -c "[ $rc != 0 ] && grep -qi 'app' '$work/out'"
"$HYPR" network create other >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_create_auto_subnet test "$rc" = 0
"$HYPR" network rm default >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_default_kept bash -c "[ $rc != 0 ] && grep -q 'pre-defined' '$work/out'"

# two VMs on one network reach each other by name (and alias) over TCP
hrun -d --name db --network app --network-alias database -u 0 busybox \
    'echo hello-from-db > /tmp/index.html; echo serving; exec busybox httpd -f -p 8000 -h /tmp' >"$work/out" 2>&1
why="$(cat "$work/out")"; check run_on_network wait_log db 90 serving
db_ip=$("$HYPR" inspect db | sed -n 's/.*"IPAddress": *"\([0-9.]*\)".*/\1/p' | head -1)
why="ip=$db_ip"; check ipam_first_address test "$db_ip" = 10.89.0.2
out=$(hrun --rm --network app -u 0 busybox "$HTTP_GET; http_get db 8000 /index.html" 2>&1); rc=$?
why="rc=$rc $out"; check name_resolves_tcp has "$out" hello-from-db
out=$(hrun --rm --network app -u 0 busybox "$HTTP_GET; http_get database 8000 /index.html" 2>&1); rc=$?
why="rc=$rc $out"; check alias_resolves has "$out" hello-from-db
out=$(hrun --rm --network app busybox 'cat /etc/resolv.conf /etc/hosts; hostname; busybox nslookup outside.test' 2>&1)
why="$out"; check guest_resolv_conf grep -q 'nameserver 10.89.0.1' <<<"$out"
# hyprd runs without egress here: names not ours are not forwarded (REFUSED)
why="$out $(tail -3 "$work/dnsmasq.log" 2>&1)"
check dns_not_forwarded_without_egress eval 'has "$out" REFUSED && lacks "$out" "10\.1\.2\.3" && ! grep -q outside.test "$work/dnsmasq.log"'

# a VM on another network can reach neither the address nor the name
out=$(hrun --rm --network other -u 0 busybox \
    "$HTTP_GET; http_get $db_ip 8000 /index.html; echo rc=\$?; busybox ping -c1 -W2 db; echo ping=\$?" 2>&1)
why="$out"; check other_network_isolated eval 'lacks "$out" hello-from-db && has "$out" "rc=1\$" && has "$out" "ping=1\$"'

# ---- published ports ----
hrun -d --name web -p 127.0.0.1:18080:8000 -u 0 busybox \
    'echo published > /tmp/index.html; echo serving; exec busybox httpd -f -p 8000 -h /tmp' >"$work/out" 2>&1
wait_log web 90 serving
got=
for _ in $(seq 30); do got=$(curl -s --max-time 5 http://127.0.0.1:18080/index.html) && [ -n "$got" ] && break; sleep 1; done
why="got=$got"; check published_port_answers test "$got" = published
out=$("$HYPR" port web 2>&1)
why="$out"; check port_command grep -q '8000/tcp -> 127.0.0.1:18080' <<<"$out"
hrun -d --name web2 -p 127.0.0.1:18080:8000 busybox 'sleep 600' >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check port_conflict_clear_error bash -c "[ $rc != 0 ] && grep -q '127.0.0.1:18080/tcp is already in use' '$work/out'"
"$HYPR" rm -f web2 >/dev/null 2>&1
"$HYPR" rm -f web >/dev/null 2>&1
got=$(curl -s --max-time 3 http://127.0.0.1:18080/index.html); rc=$?
why="rc=$rc got=$got"; check port_closed_after_rm test "$rc" != 0

# ---- volumes ----
"$HYPR" volume create data >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check volume_create test "$rc" = 0
out=$(hrun --rm -u 0 -v data:/vol busybox 'echo persisted > /vol/f && echo wrote' 2>&1)
why="$out"; check volume_write grep -q wrote <<<"$out"
out=$(hrun --rm -u 0 -v data:/vol busybox 'cat /vol/f' 2>&1)
why="$out"; check volume_survives_vm_removal grep -q persisted <<<"$out"
"$HYPR" create --name holder -v data:/vol busybox 'true' >/dev/null 2>&1
"$HYPR" volume rm data >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check volume_rm_in_use_refused bash -c "[ $rc != 0 ] && grep -q holder '$work/out'"
"$HYPR" rm holder >/dev/null 2>&1
"$HYPR" volume rm data >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check volume_rm test "$rc" = 0
# a fresh volume is filled with the image's content at its target
out=$(hrun --rm -u 0 -v etcvol:/etc busybox 'ls /etc' 2>&1)
why="$out"; check volume_populated_from_image grep -q passwd <<<"$out"
# an anonymous volume goes with rm -v
id=$("$HYPR" create -v /anon busybox 'true' 2>"$work/err")
n1=$("$HYPR" volume ls -q | wc -l)
"$HYPR" rm -v "$id" >/dev/null 2>&1
n2=$("$HYPR" volume ls -q | wc -l)
why="before=$n1 after=$n2 $(cat "$work/err")"; check anonymous_volume_removed_with_rm_v test "$n2" = $((n1 - 1))

# ---- bind mounts through virtio-fs ----
share=$work/share
mkdir -p "$share"
echo host-one >"$share/a"
echo top-secret >"$work/secret"
out=$(hrun --rm -u 0 -v "$share:/mnt" busybox 'cat /mnt/a; echo from-guest > /mnt/b' 2>&1)
why="$out"; check bind_host_file_in_guest grep -q host-one <<<"$out"
why="$(cat "$share/b" 2>&1)"; check bind_guest_write_on_host grep -q from-guest "$share/b"
hrun -d --name live -u 0 -v "$share:/mnt" busybox \
    'echo ready; while [ ! -f /mnt/edit ]; do sleep 0.2; done; cat /mnt/edit; sleep 600' >/dev/null 2>&1
wait_log live 90 ready
echo edited-on-host >"$share/edit"
why="$("$HYPR" logs live 2>&1 | tail -3)"; check bind_live_host_edit wait_log live 30 edited-on-host
"$HYPR" rm -f live >/dev/null 2>&1
out=$(hrun --rm -u 0 -v "$share:/mnt:ro" busybox 'echo x > /mnt/c && echo WROTE; cat /mnt/a' 2>&1); rc=$?
why="rc=$rc $out"; check bind_read_only eval 'lacks "$out" WROTE && [ ! -e "$share/c" ] && has "$out" host-one && has "$out" "Read-only file system"'

ln -s / "$share/root"
ln -s ../../../../.. "$share/up"
out=$(hrun --rm -u 0 -v "$share:/mnt" busybox \
    "cat /mnt/root$work/secret /mnt/up$work/secret /mnt/../secret 2>&1; ls /mnt/root/" 2>&1); rc=$?
why="rc=$rc $out"; check bind_no_escape eval 'lacks "$out" top-secret && has "$out" bin && has "$out" "No such file"'

# ---- tmpfs ----
out=$(hrun --rm -u 0 --tmpfs /scratch:size=1m busybox \
    'busybox dd if=/dev/zero of=/scratch/f bs=1024 count=2048 2>&1; echo rc=$?; busybox df /scratch' 2>&1); rc=$?
why="rc=$rc $out"; check tmpfs_size_limit eval 'has "$out" "rc=1\$" && has "$out" "No space left" && has "$out" /scratch'

# ---- addresses kept across a kill -9 of hyprd ----
kill -9 "$hyprd_pid"; wait "$hyprd_pid" 2>/dev/null
e2e_start_hyprd
ip2=$("$HYPR" inspect db | sed -n 's/.*"IPAddress": *"\([0-9.]*\)".*/\1/p' | head -1)
why="before=$db_ip after=$ip2"; check ipam_kept_across_restart test "$ip2" = "$db_ip"
out=$(hrun --rm --network app -u 0 busybox "$HTTP_GET; http_get db 8000 /index.html"'; ip=$(busybox ip -4 addr show eth0 | busybox grep -o "10\.89\.0\.[0-9]*"); echo myip=$ip' 2>&1)
why="rc=$? $out"; check dns_after_restart has "$out" hello-from-db
why="$out"; check ipam_no_reuse_after_restart eval 'has "$out" "myip=10\.89\.0\." && lacks "$out" "myip=$db_ip\$"'
"$HYPR" network rm app >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_rm_in_use_refused bash -c "[ $rc != 0 ] && grep -q db '$work/out'"
"$HYPR" rm -f db >/dev/null 2>&1
"$HYPR" network rm app >"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check network_rm test "$rc" = 0
why="$(ls "$HYPR_RUNTIME_DIR/netns")"; check network_namespace_removed test "$(ls "$HYPR_RUNTIME_DIR/netns" | wc -l)" = 2

# ---- egress (net/egress.h): NAT to the host's uplinks, never between networks ----
# A namespace of the test host plays the outside world: its server at
# 10.250.0.1 has no route back to the VMs' subnets, so only masquerading
# (source: the test host's 10.250.0.2) lets it answer. hyprd runs with
# --egress here, and with --no-egress again at the end.
egress_restart() {
    kill "$hyprd_pid" 2>/dev/null; wait "$hyprd_pid" 2>/dev/null
    "$ROOT/bin/hyprd" "$@" >>"$work/hyprd.log" 2>&1 &
    hyprd_pid=$!
    for _ in $(seq 300); do "$HYPR" health >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
egress_ns=hypr-egress-$$
ip netns add "$egress_ns" &&
    ip link add hyprupl0 type veth peer name eth0 netns "$egress_ns" &&
    ip addr add 10.250.0.2/24 dev hyprupl0 && ip link set hyprupl0 up &&
    ip -n "$egress_ns" addr add 10.250.0.1/24 dev eth0 && ip -n "$egress_ns" link set eth0 up
ip netns exec "$egress_ns" python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.250.0.1", 7777)); s.listen(8); open(sys.argv[1] + ".ready", "w").close()
while True:
    c, a = s.accept(); f = open(sys.argv[1], "a"); f.write(a[0] + "\n"); f.close(); c.sendall(b"egress-ok\n"); c.close()' \
    "$work/egress-peers" 2>>"$work/egress-server.log" &
egress_srv=$!
for _ in $(seq 100); do [ -e "$work/egress-peers.ready" ] && break; sleep 0.1; done
why="$(tail -5 "$work/hyprd.log")"; check egress_hyprd_start egress_restart --egress
"$HYPR" network create egr >"$work/out" 2>&1 && "$HYPR" network create egrint --internal >>"$work/out" 2>&1; rc=$?
why="rc=$rc $(cat "$work/out")"; check egress_networks_created test "$rc" = 0
egr_id=$("$HYPR" network inspect egr | sed -n 's/.*"Id": *"\([0-9a-f]*\)".*/\1/p' | head -1)
egr_sub=$("$HYPR" network inspect egr | sed -n 's/.*"Subnet": *"\([0-9./]*\)".*/\1/p' | head -1)
out=$("$HYPR" network inspect egr; "$HYPR" network inspect egrint)
why="$out"; check egress_in_inspect eval 'has "$out" "\"Egress\": true" && has "$out" "\"Egress\": false"'
hrun -d --name egrweb --network egr -u 0 busybox \
    'echo egr-secret > /tmp/index.html; echo serving; exec busybox httpd -f -p 8000 -h /tmp' >"$work/out" 2>&1
wait_log egrweb 90 serving
egrweb_ip=$("$HYPR" inspect egrweb | sed -n 's/.*"IPAddress": *"\([0-9.]*\)".*/\1/p' | head -1)
# DNS forwarding (net/dns_forward.h): a network with egress sends names not
# its VMs' to the upstream (dnsmasq) and relays the answer; its VMs' names
# are still answered by hyprd, never asked upstream
out=$(hrun --rm --network egr -u 0 busybox 'busybox nslookup outside.test; busybox nslookup egrweb' 2>&1)
why="$out $(tail -5 "$work/dnsmasq.log" 2>&1)"; check dns_forwards_outside_name has "$out" "Address: *10\.1\.2\.3"
why="ip=$egrweb_ip $out"
check dns_own_names_not_forwarded eval '[ -n "$egrweb_ip" ] && has "$out" "Address: *$egrweb_ip" && ! grep -q egrweb "$work/dnsmasq.log"'
# a VM of another network (`other`, egress too): out to the uplink, not into egr
out=$(hrun --rm --network other -u 0 busybox \
    "$HTTP_GET; echo | busybox nc -w 10 10.250.0.1 7777; echo nc=\$?; http_get $egrweb_ip 8000 /index.html; echo get=\$?" 2>&1)
why="$out"; check egress_reaches_uplink has "$out" egress-ok
why="$(cat "$work/egress-peers" 2>&1)"; check egress_masqueraded eval 'grep -qx 10.250.0.2 "$work/egress-peers" && ! grep -q "^10\.8[89]\." "$work/egress-peers"'
why="ip=$egrweb_ip $out"; check egress_networks_still_isolated eval '[ -n "$egrweb_ip" ] && lacks "$out" egr-secret && has "$out" "get=1\$"'
out=$(hrun --rm --network egrint -u 0 busybox 'echo | busybox nc -w 5 10.250.0.1 7777; echo nc=$?; busybox nslookup outside.test' 2>&1)
why="$out"; check egress_none_when_internal eval 'lacks "$out" egress-ok && has "$out" "nc=1\$"'
# nor DNS forwarding from an internal network
why="$out"; check dns_not_forwarded_when_internal eval 'has "$out" REFUSED && lacks "$out" "10\.1\.2\.3"'
# a crash of hyprd: the next one reuses the device, route and rules as they are
kill -9 "$hyprd_pid"; wait "$hyprd_pid" 2>/dev/null
egress_restart --egress
out=$(ip -br link | grep -c "^hve${egr_id:0:8}@"; ip route show "$egr_sub")
why="$out"; check egress_kept_across_restart eval 'has "$out" "^1\$" && has "$out" "dev hve${egr_id:0:8}"'
"$HYPR" rm -f egrweb >/dev/null 2>&1
"$HYPR" network rm egr >"$work/out" 2>&1
out=$(ip -br link | grep "^hve${egr_id:0:8}"; ip route show "$egr_sub")
why="$(cat "$work/out") $out"; check egress_removed_with_network test -z "$out"
"$HYPR" network rm egrint >/dev/null 2>&1
# egress off: every egress device of this hyprd goes
egress_restart --no-egress
out=$(ip -br link | grep "^hve")
why="$out"; check egress_off_removes_devices test -z "$out"
kill "$egress_srv" 2>/dev/null; wait "$egress_srv" 2>/dev/null
ip netns del "$egress_ns" 2>/dev/null

if [ "$nfail" != 0 ]; then
    echo "# hyprd's log (last 30 lines):"
    tail -30 "$work/hyprd.log" | sed 's/^/#   /'
    echo "# dnsmasq's log (last 10 lines):"
    tail -10 "$work/dnsmasq.log" 2>&1 | sed 's/^/#   /'
    echo "# VMMs still running:"
    pgrep -af hypr-vmm | cut -c1-300 | sed 's/^/#   /'
    for f in "$HYPR_DATA_DIR"/vms/*/console.log; do
        [ -e "$f" ] || continue
        echo "# $f (last 5 lines):"
        tail -5 "$f" | sed 's/^/#   /'
    done
fi
[ "$nfail" = 0 ]
